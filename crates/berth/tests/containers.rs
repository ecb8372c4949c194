//! Containers end to end, as root, on the busybox image: the run command line,
//! the lifecycle, isolation, and what happens when processes are killed.

use std::process::{Command, Stdio};
use std::time::Duration;

use berth_test::{eventually, json, TestContext};

fn ctx() -> TestContext {
    let t = TestContext::new(env!("CARGO_BIN_EXE_berth"));
    t.import_busybox("busybox");
    t
}

fn state(t: &TestContext, name: &str) -> serde_json::Value {
    json(&t.run(["inspect", "--type", "container", name]).ok().stdout)[0]["State"].clone()
}

#[test]
fn run_streams_output_and_returns_the_exit_status() {
    let t = ctx();
    let r = t.run([
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(r.status, 3, "{r}");
    assert_eq!(r.stdout, "out\n");
    assert_eq!(r.stderr, "err\n");
    // --rm: gone when run returns.
    assert_eq!(t.run(["ps", "-aq"]).ok().stdout, "");
}

#[test]
fn exit_statuses_follow_docker() {
    let t = ctx();
    let r = t.run(["run", "--rm", "busybox", "nosuchcommand"]);
    assert_eq!(r.status, 127, "{r}");
    assert!(r.stderr.contains("executable file not found"), "{r}");
    let r = t.run(["run", "--rm", "busybox", "/etc/passwd"]);
    assert_eq!(r.status, 126, "{r}");
    let r = t.run(["run", "--rm", "nosuchimage"]);
    assert_eq!(r.status, 125, "{r}");
    assert!(
        r.stderr
            .contains("Unable to find image 'nosuchimage:latest' locally"),
        "{r}"
    );
    let r = t.run(["run", "--rm", "-u", "nosuch", "busybox", "true"]);
    assert_eq!(r.status, 125, "{r}");
    assert!(r.stderr.contains("unable to find user nosuch"), "{r}");
    assert_eq!(
        t.run(["ps", "-aq"]).ok().stdout,
        "",
        "--rm cleans failed starts too"
    );
}

#[test]
fn command_line_options_reach_the_process() {
    let t = ctx();
    let envfile = t.work().join("app.env");
    std::fs::write(&envfile, "# comment\nFROM_FILE=1\nSHARED=file\n").unwrap();
    let r = t
        .run([
            "run",
            "--rm",
            "-e",
            "A=1",
            "-e",
            "SHARED=flag",
            "--env-file",
            envfile.to_str().unwrap(),
            "-w",
            "/tmp",
            "-u",
            "nobody",
            "--hostname",
            "box",
            "busybox",
            "sh",
            "-c",
            "echo $A $FROM_FILE $SHARED; pwd; id -u; id -g; hostname; echo $HOME; echo $HOSTNAME",
        ])
        .ok();
    assert_eq!(
        r.stdout,
        "1 1 flag\n/tmp\n65534\n65534\nbox\n/nonexistent\nbox\n"
    );

    let r = t
        .run(["run", "--rm", "-u", "1234:4321", "busybox", "id"])
        .ok();
    assert!(r.stdout.starts_with("uid=1234 gid=4321"), "{r}");
    let r = t
        .run(["run", "--rm", "--entrypoint", "echo", "busybox", "a", "b"])
        .ok();
    assert_eq!(r.stdout, "a b\n");
}

#[test]
fn entrypoint_and_cmd_combine_like_docker() {
    let t = ctx();
    let tar = berth_test::busybox_rootfs_tar();
    t.run([
        "import".as_ref(),
        "-c".as_ref(),
        r#"ENTRYPOINT ["echo", "entry"]"#.as_ref(),
        "-c".as_ref(),
        r#"CMD ["default"]"#.as_ref(),
        tar.as_os_str(),
        "echoer".as_ref(),
    ])
    .ok();
    assert_eq!(
        t.run(["run", "--rm", "echoer"]).ok().stdout,
        "entry default\n"
    );
    assert_eq!(
        t.run(["run", "--rm", "echoer", "given"]).ok().stdout,
        "entry given\n"
    );
    t.run([
        "import".as_ref(),
        "-c".as_ref(),
        "CMD echo from shell form $0".as_ref(),
        tar.as_os_str(),
        "shellform".as_ref(),
    ])
    .ok();
    assert_eq!(
        t.run(["run", "--rm", "shellform"]).ok().stdout,
        "from shell form /bin/sh\n"
    );
}

#[test]
fn the_container_is_isolated() {
    let t = ctx();
    let script = r#"
        echo pids: $(ps -o pid= | wc -l)
        echo pid1: $(cat /proc/1/cmdline | tr '\0' ' ')
        grep CapEff /proc/self/status
        grep NoNewPrivs /proc/self/status
        mount -t tmpfs none /mnt 2>/dev/null && echo mount: yes || echo mount: no
        echo 1 > /proc/sys/kernel/sysrq 2>/dev/null && echo sysctl: yes || echo sysctl: no
        echo keys: $(wc -c < /proc/keys) $(stat -c %t,%T /proc/keys)
        ls /dev | tr '\n' ' '; echo
        echo hostname: $(hostname)
    "#;
    let r = t
        .run([
            "run",
            "--rm",
            "--hostname",
            "iso",
            "busybox",
            "sh",
            "-c",
            script,
        ])
        .ok();
    let out = r.stdout;
    assert!(out.contains("pid1: sh -c"), "{out}");
    // Docker's default capability set, exactly.
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("NoNewPrivs:\t0"), "{out}");
    assert!(out.contains("mount: no"), "{out}");
    assert!(out.contains("sysctl: no"), "{out}");
    // Masked as Docker masks it: /dev/null (1,3) mounted over it.
    assert!(out.contains("keys: 0 1,3"), "masked: {out}");
    for dev in [
        "null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm",
    ] {
        assert!(
            out.contains(&format!("{dev} ")),
            "/dev/{dev} missing: {out}"
        );
    }
    assert!(out.contains("hostname: iso"), "{out}");
    // The container sees only its own processes (sh, ps, wc and the subshells).
    let pids: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("pids: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pids < 6, "{out}");

    let r = t
        .run([
            "run",
            "--rm",
            "--security-opt",
            "no-new-privileges",
            "--cap-drop",
            "ALL",
            "--cap-add",
            "NET_BIND_SERVICE",
            "busybox",
            "grep",
            "-E",
            "CapEff|NoNewPrivs",
            "/proc/self/status",
        ])
        .ok();
    assert!(r.stdout.contains("CapEff:\t0000000000000400"), "{r}");
    assert!(r.stdout.contains("NoNewPrivs:\t1"), "{r}");

    let r = t.run(["run", "--rm", "--read-only", "--tmpfs", "/scratch", "busybox", "sh", "-c", "touch /x 2>/dev/null && echo root-rw || echo root-ro; touch /scratch/y && echo tmpfs-rw"]).ok();
    assert_eq!(r.stdout, "root-ro\ntmpfs-rw\n");

    let r = t
        .run([
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "ip",
            "-o",
            "link",
        ])
        .ok();
    assert_eq!(r.stdout.lines().count(), 1, "only loopback: {r}");
    assert!(r.stdout.contains("lo:") && r.stdout.contains("UP"), "{r}");
}

#[test]
fn writes_stay_in_the_container_layer() {
    let t = ctx();
    t.run([
        "run",
        "--name",
        "writer",
        "busybox",
        "sh",
        "-c",
        "echo data > /etc/new-file; rm /etc/group",
    ])
    .ok();
    let r = t
        .run([
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "test -e /etc/new-file && echo leaked || echo clean; test -e /etc/group && echo group",
        ])
        .ok();
    assert_eq!(r.stdout, "clean\ngroup\n");
    let upper = t.root().join("containers");
    let id = json(&t.run(["inspect", "writer"]).ok().stdout)[0]["Id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        std::fs::read_to_string(upper.join(&id).join("upper/etc/new-file")).unwrap(),
        "data\n"
    );
    // Started again, it sees its own earlier changes: /etc/group is gone.
    let again = t.run(["start", "-a", "writer"]).fails(1);
    assert!(
        again.stderr.contains("can't remove '/etc/group'"),
        "{again}"
    );
}

#[test]
fn detached_lifecycle() {
    let t = ctx();
    let id = t
        .run([
            "run",
            "-d",
            "--name",
            "ticker",
            "--label",
            "app=demo",
            "busybox",
            "sh",
            "-c",
            "trap 'echo bye; exit 0' TERM; while true; do echo tick; sleep 0.1; done",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    eventually("logs", || t.run(["logs", "ticker"]).stdout.contains("tick"));
    let ps = t.run(["ps"]).ok();
    let line = ps.stdout.lines().nth(1).unwrap().to_string();
    assert!(line.starts_with(&id[..12]), "{ps}");
    assert!(line.contains("Up "), "{ps}");
    assert!(line.ends_with("ticker"), "{ps}");
    assert_eq!(
        t.run([
            "ps",
            "--filter",
            "label=app=demo",
            "--format",
            "{{.Names}} {{.State}}"
        ])
        .ok()
        .stdout,
        "ticker running\n"
    );
    let s = state(&t, "ticker");
    assert_eq!(s["Running"], true);
    assert!(s["Pid"].as_i64().unwrap() > 0);

    let e = t.run(["rm", "ticker"]).fails(1);
    assert!(
        e.stderr
            .contains("container is running: stop the container before removing or force remove"),
        "{e}"
    );

    // The trap handles SIGTERM: a clean stop, exit 0.
    assert_eq!(t.run(["stop", "ticker"]).ok().stdout, "ticker\n");
    let s = state(&t, "ticker");
    assert_eq!(s["Status"], "exited");
    assert_eq!(s["ExitCode"], 0);
    assert!(t.run(["logs", "--tail", "1", "ticker"]).ok().stdout == "bye\n");
    let ps = t.run(["ps", "-a", "--format", "{{.Status}}"]).ok();
    assert!(ps.stdout.starts_with("Exited (0) "), "{ps}");
    assert_eq!(t.run(["ps", "-q"]).ok().stdout, "", "not running");

    // Restart, kill, wait.
    assert_eq!(t.run(["start", "ticker"]).ok().stdout, "ticker\n");
    assert_eq!(state(&t, "ticker")["Status"], "running");
    t.run(["kill", "ticker"]).ok();
    assert_eq!(t.run(["wait", "ticker"]).ok().stdout, "137\n");
    let e = t.run(["kill", "ticker"]).fails(1);
    assert!(e.stderr.contains("is not running"), "{e}");
    t.run(["rename", "ticker", "renamed"]).ok();
    assert_eq!(t.run(["rm", "renamed"]).ok().stdout, "renamed\n");
    assert_eq!(t.run(["ps", "-aq"]).ok().stdout, "");
    assert!(!t.root().join("containers").join(&id).exists());
}

#[test]
fn stop_escalates_to_sigkill_after_the_timeout() {
    let t = ctx();
    // PID 1 ignores SIGTERM unless it handles it.
    t.run(["run", "-d", "--name", "stubborn", "busybox", "sleep", "600"])
        .ok();
    t.run(["stop", "-t", "1", "stubborn"]).ok();
    let s = state(&t, "stubborn");
    assert_eq!(s["ExitCode"], 137);
    t.run(["run", "-d", "--name", "forced", "busybox", "sleep", "600"])
        .ok();
    assert_eq!(t.run(["rm", "-f", "forced"]).ok().stdout, "forced\n");
}

#[test]
fn names_are_unique() {
    let t = ctx();
    t.run(["create", "--name", "one", "busybox", "true"]).ok();
    let e = t
        .run(["create", "--name", "one", "busybox", "true"])
        .fails(125);
    assert!(
        e.stderr
            .contains("The container name \"/one\" is already in use by container"),
        "{e}"
    );
    let e = t
        .run(["create", "--name=-bad", "busybox", "true"])
        .fails(125);
    assert!(e.stderr.contains("Invalid container name"), "{e}");
    assert_eq!(state(&t, "one")["Status"], "created");
    // An image in use by a container is kept.
    let e = t.run(["rmi", "busybox"]).fails(1);
    assert!(
        e.stderr.contains("container") && e.stderr.contains("is using its referenced image"),
        "{e}"
    );
}

#[test]
fn restart_policies() {
    let t = ctx();
    t.run([
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ])
    .ok();
    eventually("two restarts then exited", || {
        let v = json(&t.run(["inspect", "flaky"]).ok().stdout);
        v[0]["RestartCount"] == 2 && v[0]["State"]["Status"] == "exited"
    });
    assert_eq!(state(&t, "flaky")["ExitCode"], 1);

    t.run([
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "sleep 0.2; exit 0",
    ])
    .ok();
    eventually("restarted at least once", || {
        json(&t.run(["inspect", "always"]).ok().stdout)[0]["RestartCount"]
            .as_i64()
            .unwrap()
            >= 1
    });
    t.run(["stop", "-t", "1", "always"]).ok();
    let count = json(&t.run(["inspect", "always"]).ok().stdout)[0]["RestartCount"].clone();
    std::thread::sleep(Duration::from_millis(600));
    let v = json(&t.run(["inspect", "always"]).ok().stdout);
    assert_eq!(
        v[0]["State"]["Status"], "exited",
        "a stopped container stays stopped"
    );
    assert_eq!(v[0]["RestartCount"], count);
    let e = t
        .run(["run", "--rm", "--restart", "always", "busybox", "true"])
        .fails(125);
    assert!(e.stderr.contains("Conflicting options"), "{e}");
}

#[test]
fn resource_limits_reach_the_cgroup() {
    let t = ctx();
    let id = t
        .run([
            "run",
            "-d",
            "--memory",
            "64m",
            "--pids-limit",
            "50",
            "--cpus",
            "0.5",
            "busybox",
            "sleep",
            "600",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    let read = |controller: &str, file: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{controller}/berth/{id}/{file}"))
            .or_else(|_| std::fs::read_to_string(format!("/sys/fs/cgroup/berth/{id}/{file}")))
            .unwrap_or_default()
    };
    let mem = read("memory", "memory.limit_in_bytes") + &read("", "memory.max");
    assert!(mem.contains("67108864"), "memory limit: {mem:?}");
    let pids = read("pids", "pids.max");
    assert_eq!(pids.trim(), "50");
    let quota = read("cpu", "cpu.cfs_quota_us") + &read("", "cpu.max");
    assert!(quota.contains("50000"), "cpu quota: {quota:?}");
    t.run(["rm", "-f", &id]).ok();
    assert!(
        !std::path::Path::new(&format!("/sys/fs/cgroup/memory/berth/{id}")).exists(),
        "cgroup removed"
    );
}

#[test]
fn a_killed_monitor_never_leaves_a_stale_up() {
    let t = ctx();
    t.run(["run", "-d", "--name", "orphan", "busybox", "sleep", "600"])
        .ok();
    let v = json(&t.run(["inspect", "orphan"]).ok().stdout);
    let pid = v[0]["State"]["Pid"].as_i64().unwrap();
    let monitor = monitor_pid(&t, "orphan");
    kill9(monitor);
    // The container itself still runs: it is rightly "Up".
    eventually("monitor gone", || {
        !std::path::Path::new(&format!("/proc/{monitor}/stat")).exists() || zombie(monitor)
    });
    assert!(t
        .run(["ps", "--format", "{{.Names}} {{.State}}"])
        .ok()
        .stdout
        .contains("orphan running"));
    // Now the container dies with nobody to record it: ps must not say Up.
    kill9(pid);
    eventually("exited", || {
        t.run(["ps", "-a", "--format", "{{.State}}"])
            .ok()
            .stdout
            .trim()
            == "exited"
    });
    let s = state(&t, "orphan");
    assert_eq!(s["Running"], false);
    t.run(["rm", "orphan"]).ok();
    t.run(["system", "check"]).ok();
}

#[test]
fn a_killed_cli_leaves_the_container_running() {
    let t = ctx();
    let mut child = t
        .command([
            "run",
            "--name",
            "fg",
            "busybox",
            "sh",
            "-c",
            "trap 'exit 0' TERM; while true; do echo alive; sleep 0.1; done",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually("running", || {
        t.run(["ps", "--format", "{{.Names}}"])
            .stdout
            .contains("fg")
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let before = t.run(["logs", "fg"]).ok().stdout.lines().count();
    eventually("still logging", || {
        t.run(["logs", "fg"]).ok().stdout.lines().count() > before + 2
    });
    assert_eq!(state(&t, "fg")["Status"], "running");
    t.run(["stop", "fg"]).ok();
    assert_eq!(state(&t, "fg")["ExitCode"], 0);
}

#[test]
fn interactive_input_reaches_the_container() {
    let t = ctx();
    let r = t
        .run_with_stdin(
            ["run", "--rm", "-i", "busybox", "sh", "-c", "tr a-z A-Z"],
            b"hello\nworld\n",
        )
        .ok();
    assert_eq!(r.stdout, "HELLO\nWORLD\n");
}

#[test]
fn many_containers_in_parallel() {
    let t = ctx();
    let children: Vec<_> = (0..8)
        .map(|i| {
            t.command(["run", "--rm", "busybox", "sh", "-c", &format!("echo n{i}")])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("n{i}\n"));
    }
    let ids: Vec<String> = (0..6)
        .map(|_| {
            t.run(["run", "-d", "busybox", "sleep", "600"])
                .ok()
                .stdout
                .trim()
                .to_string()
        })
        .collect();
    let mut rm = t.command(["rm", "-f"]);
    rm.args(&ids);
    assert!(rm.status().unwrap().success());
    assert_eq!(t.run(["ps", "-aq"]).ok().stdout, "");
    t.run(["system", "check"]).ok();
}

/// The monitor's PID: the parent of the container's init process.
fn monitor_pid(t: &TestContext, name: &str) -> i64 {
    let v = json(&t.run(["inspect", name]).ok().stdout);
    let pid = v[0]["State"]["Pid"].as_i64().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn zombie(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
        .unwrap_or(true)
}

fn kill9(pid: i64) {
    assert!(Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap()
        .success());
}

#[test]
fn exec_joins_the_running_container() {
    let t = ctx();
    t.run([
        "run",
        "-d",
        "--name",
        "host",
        "-e",
        "FROM_RUN=1",
        "busybox",
        "sleep",
        "600",
    ])
    .ok();
    let r = t
        .run([
            "exec",
            "host",
            "sh",
            "-c",
            "echo $FROM_RUN; ps -o pid,comm | grep -c sleep; hostname",
        ])
        .ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "1", "container env: {r}");
    assert_eq!(lines[1], "1", "sees the container's processes: {r}");
    let id = json(&t.run(["inspect", "host"]).ok().stdout)[0]["Id"]
        .as_str()
        .unwrap()[..12]
        .to_string();
    assert_eq!(lines[2], id, "same UTS namespace");
    let r = t.run([
        "exec",
        "-u",
        "nobody",
        "-w",
        "/tmp",
        "-e",
        "X=2",
        "host",
        "sh",
        "-c",
        "id -u; pwd; echo $X; exit 7",
    ]);
    assert_eq!(r.status, 7, "{r}");
    assert_eq!(r.stdout, "65534\n/tmp\n2\n");
    let r = t
        .run_with_stdin(["exec", "-i", "host", "wc", "-l"], b"a\nb\nc\n")
        .ok();
    assert_eq!(r.stdout.trim(), "3");
    t.run([
        "exec",
        "-d",
        "host",
        "sh",
        "-c",
        "echo detached > /tmp/marker",
    ])
    .ok();
    eventually("detached exec ran", || {
        t.run(["exec", "host", "cat", "/tmp/marker"]).stdout == "detached\n"
    });
    assert_eq!(t.run(["exec", "host", "nosuch"]).status, 127);
    // The course's `exec` into a container then finds what the app wrote.
    t.run(["stop", "-t", "1", "host"]).ok();
    let e = t.run(["exec", "host", "true"]).fails(1);
    assert!(e.stderr.contains("is not running"), "{e}");
}

#[test]
fn pause_top_and_stats() {
    let t = ctx();
    t.run([
        "run",
        "-d",
        "--name",
        "busy",
        "--memory",
        "32m",
        "busybox",
        "sh",
        "-c",
        "while true; do sleep 0.05; done",
    ])
    .ok();
    let top = t.run(["top", "busy"]).ok();
    assert!(top.stdout.starts_with("UID"), "{top}");
    assert!(top.stdout.contains("sh -c while true"), "{top}");
    let stats = t
        .run([
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.MemUsage}} {{.PIDs}}",
        ])
        .ok();
    assert!(
        stats.stdout.starts_with("busy ") && stats.stdout.contains(" / 32MiB "),
        "{stats}"
    );

    assert_eq!(t.run(["pause", "busy"]).ok().stdout, "busy\n");
    assert_eq!(state(&t, "busy")["Status"], "paused");
    assert!(t
        .run(["ps", "--format", "{{.Status}}"])
        .ok()
        .stdout
        .contains("(Paused)"));
    let e = t.run(["exec", "busy", "true"]).fails(1);
    assert!(e.stderr.contains("paused"), "{e}");
    assert_eq!(t.run(["unpause", "busy"]).ok().stdout, "busy\n");
    assert_eq!(state(&t, "busy")["Status"], "running");
    t.run(["exec", "busy", "true"]).ok();
    // Stopping a paused container thaws it first.
    t.run(["pause", "busy"]).ok();
    t.run(["stop", "-t", "1", "busy"]).ok();
    assert_eq!(state(&t, "busy")["Status"], "exited");
}

/// A terminal session in tmux on a private server, ended when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(cmd: &str) -> Option<Self> {
        if !berth_test::require_tool("tmux") {
            return None;
        }
        let socket = format!("berth-test-{}-{}", std::process::id(), rand_suffix());
        let ok = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "100",
                "-y",
                "30",
                cmd,
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux failed to start");
        Some(Self { socket })
    }

    fn keys(&self, keys: &[&str]) {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket, "send-keys", "-t", "t"])
            .args(keys);
        assert!(c.status().unwrap().success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-t", "t", "-p"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn resize(&self, cols: u16, rows: u16) {
        let ok = Command::new("tmux")
            .args([
                "-L",
                &self.socket,
                "resize-window",
                "-t",
                "t",
                "-x",
                &cols.to_string(),
                "-y",
                &rows.to_string(),
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    fn wait_for(&self, text: &str) {
        eventually(&format!("{text:?} on the screen"), || {
            self.screen().contains(text)
        });
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
}

#[test]
fn run_it_gives_a_real_terminal() {
    let t = ctx();
    let cmd = format!(
        "{} --root {} run -it --name term busybox sh; echo EXIT=$?; sleep 60",
        t.bin().display(),
        t.root().display()
    );
    let Some(tm) = Tmux::start(&cmd) else { return };
    tm.wait_for("/ #");
    tm.keys(&["tty; stty size", "Enter"]);
    tm.wait_for("30 100");
    assert!(tm.screen().contains("/dev/pts/0"), "{}", tm.screen());
    // A window-size change reaches the container's terminal.
    tm.resize(120, 40);
    std::thread::sleep(Duration::from_millis(300));
    tm.keys(&["stty size", "Enter"]);
    tm.wait_for("40 120");
    // Ctrl-C interrupts the container's foreground process, not berth.
    tm.keys(&["sleep 300", "Enter"]);
    std::thread::sleep(Duration::from_millis(500));
    tm.keys(&["C-c"]);
    tm.keys(&["echo still-$((40+2))", "Enter"]);
    // Only the shell, back at its prompt, prints the expanded line.
    eventually("the shell answers after Ctrl-C", || {
        tm.screen().lines().any(|l| l.trim_end() == "still-42")
    });
    tm.keys(&["exit 4", "Enter"]);
    tm.wait_for("EXIT=4");
    assert_eq!(state(&t, "term")["ExitCode"], 4);
}

#[test]
fn exec_it_works_as_in_the_course() {
    let t = ctx();
    t.run(["run", "-d", "--name", "app", "busybox", "sleep", "600"])
        .ok();
    let cmd = format!(
        "{} --root {} exec -it app sh; echo EXIT=$?; sleep 60",
        t.bin().display(),
        t.root().display()
    );
    let Some(tm) = Tmux::start(&cmd) else { return };
    tm.wait_for("/ #");
    tm.keys(&[
        "ps -o comm | grep -c sleep; echo marker > /tmp/from-exec",
        "Enter",
    ]);
    tm.keys(&["exit 2", "Enter"]);
    tm.wait_for("EXIT=2");
    assert_eq!(
        t.run(["exec", "app", "cat", "/tmp/from-exec"]).ok().stdout,
        "marker\n"
    );
}

#[test]
fn init_forwards_signals_and_reaps() {
    let t = ctx();
    let r = t.run([
        "run",
        "--rm",
        "--init",
        "busybox",
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '; exit 6",
    ]);
    assert_eq!(r.status, 6, "{r}");
    assert!(r.stdout.starts_with("/sbin/docker-init -- sh -c"), "{r}");
    // Without --init, `sleep` as PID 1 ignores SIGTERM; with it, stop is clean.
    t.run([
        "run", "-d", "--init", "--name", "sleeper", "busybox", "sleep", "600",
    ])
    .ok();
    t.run(["stop", "-t", "30", "sleeper"]).ok();
    assert_eq!(
        state(&t, "sleeper")["ExitCode"],
        143,
        "SIGTERM reached sleep"
    );
}

#[test]
fn more_flags_and_commands() {
    let t = ctx();
    // --stop-signal: the container handles USR1 and exits 0.
    t.run([
        "run",
        "-d",
        "--name",
        "sig",
        "--stop-signal",
        "USR1",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' USR1; while true; do sleep 0.1; done",
    ])
    .ok();
    t.run(["stop", "sig"]).ok();
    assert_eq!(state(&t, "sig")["ExitCode"], 0);
    // restart: a new start, the old logs kept.
    t.run([
        "run",
        "-d",
        "--name",
        "counter",
        "busybox",
        "sh",
        "-c",
        "echo start; sleep 600",
    ])
    .ok();
    eventually("first start logged", || {
        t.run(["logs", "counter"]).stdout == "start\n"
    });
    t.run(["restart", "-t", "1", "counter"]).ok();
    eventually("second start logged", || {
        t.run(["logs", "counter"]).stdout == "start\nstart\n"
    });
    assert_eq!(state(&t, "counter")["Status"], "running");
    // logs -f follows until the container exits; --since filters by time.
    t.run([
        "run",
        "-d",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo line $i; sleep 0.2; done",
    ])
    .ok();
    let f = t.run(["logs", "-f", "talker"]).ok();
    assert_eq!(f.stdout, "line 1\nline 2\nline 3\n");
    assert_eq!(
        t.run(["logs", "--since", "2000-01-01T00:00:00Z", "talker"])
            .ok()
            .stdout
            .lines()
            .count(),
        3
    );
    assert_eq!(t.run(["logs", "--since", "0s", "talker"]).ok().stdout, "");
    let ts = t.run(["logs", "-t", "--tail", "1", "talker"]).ok().stdout;
    assert!(ts.ends_with("Z line 3\n") && ts.starts_with("20"), "{ts}");
    // ps -n, -l and status filters.
    assert_eq!(
        t.run(["ps", "-n", "1", "--format", "{{.Names}}"])
            .ok()
            .stdout,
        "talker\n"
    );
    assert_eq!(
        t.run(["ps", "-l", "--format", "{{.Names}}"]).ok().stdout,
        "talker\n"
    );
    let exited = t
        .run(["ps", "--filter", "status=exited", "--format", "{{.Names}}"])
        .ok()
        .stdout;
    assert!(
        exited.contains("sig") && exited.contains("talker") && !exited.contains("counter"),
        "{exited}"
    );
    assert_eq!(
        t.run(["ps", "--filter", "exited=0", "-q"])
            .ok()
            .stdout
            .lines()
            .count(),
        2
    );
    // --network host shares the host's interfaces; --privileged warns.
    let host_links = std::fs::read_dir("/sys/class/net").unwrap().count();
    let r = t
        .run([
            "run",
            "--rm",
            "--network",
            "host",
            "busybox",
            "ls",
            "/sys/class/net",
        ])
        .ok();
    assert_eq!(r.stdout.split_whitespace().count(), host_links, "{r}");
    let r = t
        .run([
            "run",
            "--rm",
            "--privileged",
            "busybox",
            "grep",
            "CapEff",
            "/proc/self/status",
        ])
        .ok();
    assert!(r.stderr.contains("WARNING: --privileged"), "{r}");
    assert!(
        !r.stdout.contains("00000000a80425fb"),
        "all capabilities: {r}"
    );
    t.run(["rm", "-f", "sig", "counter", "talker"]).ok();
}

/// Two layers where the upper one deletes a file (whiteout) and replaces a
/// directory (opaque): overlayfs and the copy snapshotter must show the same.
#[test]
fn whiteouts_apply_with_overlay_and_with_the_copy_snapshotter() {
    use sha2::Digest as _;
    let t = ctx();
    let layer = |entries: &[(&str, &[u8])]| -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut h = tar::Header::new_ustar();
            if path.ends_with('/') {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
            } else {
                h.set_mode(0o644);
            }
            h.set_size(data.len() as u64);
            h.set_uid(0);
            h.set_gid(0);
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    };
    let base = std::fs::read(berth_test::busybox_rootfs_tar()).unwrap();
    let l1 = layer(&[
        ("a/", b""),
        ("a/gone", b"1"),
        ("a/stays", b"2"),
        ("b/", b""),
        ("b/old", b"3"),
    ]);
    let l2 = layer(&[
        ("a/.wh.gone", b""),
        ("b/", b""),
        ("b/.wh..wh..opq", b""),
        ("b/new", b"4"),
    ]);
    let hex = |d: &[u8]| hex::encode(sha2::Sha256::digest(d));
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", hex(&base)), format!("sha256:{}", hex(&l1)), format!("sha256:{}", hex(&l2))]},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let archive = t.work().join("layered.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&archive).unwrap());
        let mut add = |name: &str, data: &[u8]| {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, data).unwrap();
        };
        add("base.tar", &base);
        add("l1.tar", &l1);
        add("l2.tar", &l2);
        add("config.json", &config);
        add(
            "manifest.json",
            serde_json::json!([{"Config": "config.json", "RepoTags": ["layered:1"], "Layers": ["base.tar", "l1.tar", "l2.tar"]}])
                .to_string()
                .as_bytes(),
        );
        b.finish().unwrap();
    }
    t.run(["load".as_ref(), "-i".as_ref(), archive.as_os_str()])
        .ok();
    let script = "ls /a /b | tr '\\n' ' '";
    let overlay = t
        .run(["run", "--rm", "layered:1", "sh", "-c", script])
        .ok()
        .stdout;
    assert_eq!(overlay, "/a: stays  /b: new ");
    let copied = t
        .command(["run", "--rm", "layered:1", "sh", "-c", script])
        .env("BERTH_SNAPSHOTTER", "copy")
        .output()
        .unwrap();
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&copied.stdout), overlay);
}

#[test]
fn the_default_network_is_a_bridge() {
    let t = ctx();
    t.run(["run", "-d", "--name", "one", "busybox", "sleep", "600"])
        .ok();
    let ip = json(&t.run(["inspect", "one"]).ok().stdout)[0]["NetworkSettings"]["Networks"]
        ["bridge"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ip.starts_with("172.17.0."), "{ip}");
    // Containers on the default bridge reach each other.
    let r = t
        .run(["run", "--rm", "busybox", "ping", "-c", "1", "-W", "2", &ip])
        .ok();
    assert!(r.stdout.contains("1 packets received"), "{r}");
    let ls = t.run(["network", "ls", "--format", "{{.Name}}"]).ok();
    assert_eq!(ls.stdout, "bridge\nhost\nnone\n");
    let e = t.run(["network", "rm", "bridge"]).fails(1);
    assert!(e.stderr.contains("pre-defined"), "{e}");
    t.run(["rm", "-f", "one"]).ok();
}
