//! Published ports end to end: the course's first example served to the host,
//! with the proxy berth runs instead of iptables. Only loopback is addressed.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use berth_test::{json, TestContext};

fn ctx() -> TestContext {
    let t = TestContext::new(env!("CARGO_BIN_EXE_berth"));
    t.import_busybox("busybox");
    t
}

/// A free port on loopback, for host ports the test chooses.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET / over plain HTTP/1.0; `None` while nothing answers.
fn get(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    let (_, content) = body.split_once("\r\n\r\n")?;
    Some(content.to_string())
}

fn eventually_get(addr: &str, want: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if get(addr).as_deref() == Some(want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{addr} never served {want:?} (last: {:?})", get(addr));
}

/// The course's first example: `-d -p HOSTPORT:80` with the site bind-mounted;
/// the host fetches the page, changes the file, and sees the change.
#[test]
fn the_course_example_serves_the_host() {
    let t = ctx();
    let site = t.work().join("site");
    fs::create_dir(&site).unwrap();
    fs::write(site.join("index.html"), "<h1>Hello from berth</h1>\n").unwrap();
    let port = free_port();
    t.run([
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("{port}:80"),
        "-v",
        &format!("{}:/var/www", site.display()),
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/var/www",
    ])
    .ok();
    let addr = format!("127.0.0.1:{port}");
    eventually_get(&addr, "<h1>Hello from berth</h1>\n");
    fs::write(site.join("index.html"), "<h1>Changed on the host</h1>\n").unwrap();
    assert_eq!(
        get(&addr).as_deref(),
        Some("<h1>Changed on the host</h1>\n")
    );

    let ps = t.run(["ps", "--format", "{{.Ports}}"]).ok();
    assert_eq!(ps.stdout, format!("0.0.0.0:{port}->80/tcp\n"));
    assert_eq!(
        t.run(["port", "web"]).ok().stdout,
        format!("80/tcp -> 0.0.0.0:{port}\n")
    );
    assert_eq!(
        t.run(["port", "web", "80"]).ok().stdout,
        format!("0.0.0.0:{port}\n")
    );
    let e = t.run(["port", "web", "81"]).fails(1);
    assert!(
        e.stderr
            .contains("No public port '81/tcp' published for web"),
        "{e}"
    );
    let v = json(&t.run(["inspect", "web"]).ok().stdout);
    assert_eq!(
        v[0]["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"],
        port.to_string()
    );

    // A host port already in use is a clear error at run.
    let e = t
        .run([
            "run",
            "-d",
            "-p",
            &format!("{port}:80"),
            "busybox",
            "sleep",
            "600",
        ])
        .fails(125);
    assert!(e.stderr.contains("port is already allocated"), "{e}");

    // Stopping the container closes the port.
    t.run(["stop", "-t", "1", "web"]).ok();
    assert!(
        TcpStream::connect(&addr).is_err(),
        "port still open after stop"
    );
    assert_eq!(
        t.run(["ps", "-a", "--filter", "name=web", "--format", "{{.Ports}}"])
            .ok()
            .stdout,
        "\n"
    );
    // And starting it again publishes it again.
    t.run(["start", "web"]).ok();
    eventually_get(&addr, "<h1>Changed on the host</h1>\n");
    t.run(["rm", "-f", "web"]).ok();
    assert!(TcpStream::connect(&addr).is_err());
}

#[test]
fn free_ports_and_publish_all() {
    let t = ctx();
    let tar = berth_test::busybox_rootfs_tar();
    t.run([
        "import".as_ref(),
        "-c".as_ref(),
        "EXPOSE 8000 9000".as_ref(),
        tar.as_os_str(),
        "svc".as_ref(),
    ])
    .ok();
    t.run([
        "run", "-d", "--name", "all", "-P", "svc", "httpd", "-f", "-p", "8000", "-h", "/etc",
    ])
    .ok();
    let ports = t.run(["port", "all"]).ok().stdout;
    let lines: Vec<&str> = ports.lines().collect();
    assert_eq!(lines.len(), 2, "{ports}");
    assert!(
        lines[0].starts_with("8000/tcp -> 0.0.0.0:")
            && lines[1].starts_with("9000/tcp -> 0.0.0.0:"),
        "{ports}"
    );
    let p8000: u16 = lines[0].rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(p8000, 0);
    let start = Instant::now();
    loop {
        if let Some(body) = get(&format!("127.0.0.1:{p8000}")) {
            assert!(
                body.contains("404") || body.contains("Not Found") || body.contains("root:"),
                "{body}"
            );
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A loopback-only binding with a free port.
    t.run([
        "run",
        "-d",
        "--name",
        "local",
        "-p",
        "127.0.0.1::80",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ])
    .ok();
    let addr = t
        .run(["port", "local", "80/tcp"])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    // Ranges.
    let a = free_port();
    let r = t
        .run([
            "create",
            "-p",
            &format!("{a}-{}:80-81", a + 1),
            "busybox",
            "true",
        ])
        .ok();
    let v = json(&t.run(["inspect", r.stdout.trim()]).ok().stdout);
    assert_eq!(v[0]["Id"].as_str().unwrap(), r.stdout.trim());
    let e = t
        .run(["run", "-p", "80:80/sctp", "busybox", "true"])
        .fails(125);
    assert!(e.stderr.contains("unknown protocol"), "{e}");
    let w = t
        .run([
            "run",
            "--rm",
            "--network",
            "host",
            "-p",
            "80:80",
            "busybox",
            "true",
        ])
        .ok();
    assert!(
        w.stderr
            .contains("Published ports are discarded when using host network mode"),
        "{w}"
    );
    t.run(["rm", "-f", "all", "local"]).ok();
}
