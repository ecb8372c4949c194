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

/// busybox 1.35's wget crashes when given -T, so its `timeout` bounds the wait.
fn wget(t: &TestContext, network: &str, url: &str) -> berth_test::Run {
    t.run([
        "run",
        "--rm",
        "--network",
        network,
        "busybox",
        "timeout",
        "5",
        "wget",
        "-qO-",
        url,
    ])
}

/// Two containers on a user network: one serves, the other fetches it by name
/// and by alias; addresses come from the network's subnet.
#[test]
fn containers_on_a_network_reach_each_other_by_name() {
    let t = ctx();
    let site = t.work().join("site");
    fs::create_dir(&site).unwrap();
    fs::write(site.join("index.html"), "from api\n").unwrap();
    let id = t
        .run(["network", "create", "--subnet", "10.231.0.0/24", "appnet"])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    let ls = t
        .run(["network", "ls", "--format", "{{.Name}} {{.Driver}}"])
        .ok();
    assert_eq!(ls.stdout, "appnet bridge\nhost host\nnone null\n");
    t.run([
        "run",
        "-d",
        "--name",
        "api",
        "--network",
        "appnet",
        "--network-alias",
        "backend",
        "-v",
        &format!("{}:/www", site.display()),
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ])
    .ok();
    let v = json(&t.run(["inspect", "api"]).ok().stdout);
    assert_eq!(
        v[0]["NetworkSettings"]["Networks"]["appnet"]["IPAddress"],
        "10.231.0.2"
    );
    assert_eq!(
        v[0]["NetworkSettings"]["Networks"]["appnet"]["Gateway"],
        "10.231.0.1"
    );
    let mut ok = false;
    for _ in 0..100 {
        if wget(&t, "appnet", "http://api/").stdout == "from api\n" {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ok, "api never answered by name");
    assert_eq!(wget(&t, "appnet", "http://backend/").stdout, "from api\n");
    assert_eq!(
        wget(&t, "appnet", "http://10.231.0.2/").stdout,
        "from api\n"
    );
    // Off the network there is no route to it.
    let r = t.run([
        "run",
        "--rm",
        "busybox",
        "timeout",
        "2",
        "wget",
        "-qO-",
        "http://10.231.0.2/",
    ]);
    assert_ne!(r.status, 0);

    let n = json(&t.run(["network", "inspect", "appnet"]).ok().stdout);
    assert_eq!(n[0]["IPAM"]["Config"][0]["Subnet"], "10.231.0.0/24");
    let members = n[0]["Containers"].as_object().unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(
        members.values().next().unwrap()["IPv4Address"],
        "10.231.0.2/24"
    );

    // A running container joins and leaves live.
    t.run(["run", "-d", "--name", "late", "busybox", "sleep", "600"])
        .ok();
    t.run([
        "network",
        "connect",
        "--alias",
        "latecomer",
        "appnet",
        "late",
    ])
    .ok();
    let r = t
        .run([
            "exec",
            "late",
            "timeout",
            "5",
            "wget",
            "-qO-",
            "http://api/",
        ])
        .ok();
    assert_eq!(r.stdout, "from api\n");
    let hosts = t.run(["exec", "api", "cat", "/etc/hosts"]).ok().stdout;
    assert!(hosts.contains("late latecomer"), "{hosts}");
    t.run(["network", "disconnect", "appnet", "late"]).ok();
    assert_ne!(
        t.run([
            "exec",
            "late",
            "timeout",
            "2",
            "wget",
            "-qO-",
            "http://10.231.0.2/"
        ])
        .status,
        0
    );
    assert!(!t
        .run(["exec", "api", "cat", "/etc/hosts"])
        .ok()
        .stdout
        .contains("late"));

    // In use: not removable.
    let e = t.run(["network", "rm", "appnet"]).fails(1);
    assert!(e.stderr.contains("active endpoints"), "{e}");
    t.run(["rm", "-f", "api", "late"]).ok();
    assert_eq!(t.run(["network", "rm", "appnet"]).ok().stdout, "appnet\n");
    let e = t.run(["network", "rm", "none"]).fails(1);
    assert!(e.stderr.contains("pre-defined"), "{e}");
}

#[test]
fn network_options_and_errors() {
    let t = ctx();
    let e = t
        .run(["run", "--rm", "--network", "nosuchnet", "busybox", "true"])
        .fails(125);
    assert!(e.stderr.contains("network nosuchnet not found"), "{e}");
    let e = t
        .run(["run", "--rm", "--network-alias", "x", "busybox", "true"])
        .fails(125);
    assert!(e.stderr.contains("user defined networks"), "{e}");
    t.run([
        "network",
        "create",
        "--internal",
        "--label",
        "team=a",
        "inner",
    ])
    .ok();
    let e = t.run(["network", "create", "inner"]).fails(1);
    assert!(e.stderr.contains("already exists"), "{e}");
    let v = json(&t.run(["network", "inspect", "inner"]).ok().stdout);
    assert_eq!(v[0]["Internal"], true);
    assert_eq!(v[0]["Labels"]["team"], "a");
    let r = t
        .run([
            "run", "--rm", "--network", "inner", "--ip", "172.18.0.50", "--add-host", "db.local:10.9.8.7",
            "--dns", "10.0.0.53", "busybox", "sh", "-c", "ip -o -4 addr show eth0 | grep -o '172[^ ]*'; grep db.local /etc/hosts; cat /etc/resolv.conf",
        ])
        .ok();
    assert!(
        r.stdout
            .starts_with("172.18.0.50/16\n10.9.8.7\tdb.local\nnameserver 10.0.0.53\n"),
        "{r}"
    );
    let p = t.run(["network", "prune", "-f"]).ok();
    assert_eq!(p.stdout, "Deleted Networks:\ninner\n");
    assert!(t
        .run(["network", "ls", "-q", "--filter", "name=inner"])
        .ok()
        .stdout
        .is_empty());
}
