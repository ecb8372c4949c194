//! The userspace port proxy (`berth __proxy`): listens on the host's ports and
//! connects, inside the container's network namespace, to the container's
//! port; no iptables needed. One process per container, started by its monitor
//! before the container so a port already in use fails `run` at once, and
//! ended with the container (or as soon as the monitor goes: its stdin closes).

use std::io::{self, BufRead, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

use crate::ports::PortBinding;

/// How long a UDP flow without traffic keeps its socket, as docker-proxy does.
const UDP_IDLE: Duration = Duration::from_secs(90);

enum Request {
    Tcp(u16, mpsc::Sender<io::Result<TcpStream>>),
    Udp(mpsc::Sender<io::Result<UdpSocket>>),
}

/// Runs the proxy. Prints `ready JSON` (the actual bindings) or `error MSG`
/// on stdout, then serves until stdin closes.
pub fn run(netns: &Path, bindings: &[PortBinding]) -> i32 {
    let mut out = io::stdout();
    let fail = |out: &mut io::Stdout, msg: String| {
        let _ = writeln!(out, "error {msg}");
        let _ = out.flush();
        1
    };
    // A thread that lives in the container's network namespace makes every
    // socket that must talk to the container.
    let ns = match std::fs::File::open(netns) {
        Ok(f) => f,
        Err(e) => return fail(&mut out, format!("cannot open {}: {e}", netns.display())),
    };
    let (tx, rx) = mpsc::channel::<Request>();
    let (ns_ok_tx, ns_ok_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let moved = move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network));
        let _ = ns_ok_tx.send(moved.map_err(io::Error::from));
        for req in rx {
            match req {
                Request::Tcp(port, reply) => {
                    let _ = reply.send(TcpStream::connect(("127.0.0.1", port)));
                }
                Request::Udp(reply) => {
                    let _ = reply.send(UdpSocket::bind("127.0.0.1:0"));
                }
            }
        }
    });
    match ns_ok_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return fail(
                &mut out,
                format!("cannot enter the container's network: {e}"),
            )
        }
        Err(_) => return fail(&mut out, "network thread died".into()),
    }
    let tx = Arc::new(Mutex::new(tx));

    let mut bound = Vec::new();
    let mut servers: Vec<Box<dyn FnOnce() + Send>> = Vec::new();
    for b in bindings {
        let addr: SocketAddr = match format!("{}:{}", bracket(&b.host_ip), b.host_port).parse() {
            Ok(a) => a,
            Err(e) => return fail(&mut out, format!("bad address {}: {e}", b.host_ip)),
        };
        let in_use = |e: io::Error| {
            format!(
                "Bind for {}:{} failed: port is already allocated ({e}); choose another host port, or -p {} for a free one",
                b.host_ip, b.host_port, b.container_port
            )
        };
        let mut actual = b.clone();
        if b.proto == "udp" {
            let sock = match UdpSocket::bind(addr) {
                Ok(s) => s,
                Err(e) => return fail(&mut out, in_use(e)),
            };
            actual.host_port = sock.local_addr().map(|a| a.port()).unwrap_or(b.host_port);
            let tx = tx.clone();
            let port = b.container_port;
            servers.push(Box::new(move || serve_udp(sock, port, tx)));
        } else {
            let listener = match TcpListener::bind(addr) {
                Ok(l) => l,
                Err(e) => return fail(&mut out, in_use(e)),
            };
            actual.host_port = listener
                .local_addr()
                .map(|a| a.port())
                .unwrap_or(b.host_port);
            let tx = tx.clone();
            let port = b.container_port;
            servers.push(Box::new(move || serve_tcp(listener, port, tx)));
        }
        bound.push(actual);
    }
    for s in servers {
        std::thread::spawn(s);
    }
    let _ = writeln!(
        out,
        "ready {}",
        serde_json::to_string(&bound).expect("json")
    );
    let _ = out.flush();
    // Serve until the monitor closes our input (or dies).
    let mut line = String::new();
    while io::stdin()
        .lock()
        .read_line(&mut line)
        .map(|n| n > 0)
        .unwrap_or(false)
    {
        line.clear();
    }
    0
}

fn bracket(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}

fn serve_tcp(listener: TcpListener, port: u16, tx: Arc<Mutex<mpsc::Sender<Request>>>) {
    for client in listener.incoming().flatten() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let (reply, answer) = mpsc::channel();
            if tx
                .lock()
                .expect("proxy channel")
                .send(Request::Tcp(port, reply))
                .is_err()
            {
                return;
            }
            let Ok(Ok(upstream)) = answer.recv() else {
                // Nothing listens in the container yet: close, as docker-proxy does.
                let _ = client.shutdown(Shutdown::Both);
                return;
            };
            relay(client, upstream);
        });
    }
}

/// Copies both ways; each direction's end is passed on as a half-close.
fn relay(a: TcpStream, b: TcpStream) {
    let (Ok(mut a2), Ok(mut b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || {
        let mut a = a;
        let mut b = b;
        let _ = io::copy(&mut a, &mut b);
        let _ = b.shutdown(Shutdown::Write);
    });
    let _ = io::copy(&mut b2, &mut a2);
    let _ = a2.shutdown(Shutdown::Write);
    let _ = up.join();
}

fn serve_udp(sock: UdpSocket, port: u16, tx: Arc<Mutex<mpsc::Sender<Request>>>) {
    let flows: Arc<Mutex<std::collections::HashMap<SocketAddr, UdpSocket>>> = Arc::default();
    let mut buf = vec![0u8; 65536];
    while let Ok((n, from)) = sock.recv_from(&mut buf) {
        let existing = flows
            .lock()
            .expect("flows")
            .get(&from)
            .and_then(|s| s.try_clone().ok());
        let upstream = match existing {
            Some(s) => s,
            None => {
                let (reply, answer) = mpsc::channel();
                if tx
                    .lock()
                    .expect("proxy channel")
                    .send(Request::Udp(reply))
                    .is_err()
                {
                    return;
                }
                let Ok(Ok(up)) = answer.recv() else { continue };
                if up.connect(("127.0.0.1", port)).is_err() {
                    continue;
                }
                let _ = up.set_read_timeout(Some(UDP_IDLE));
                let (Ok(back), Ok(reader)) = (sock.try_clone(), up.try_clone()) else {
                    continue;
                };
                flows
                    .lock()
                    .expect("flows")
                    .insert(from, up.try_clone().expect("clone"));
                let flows = flows.clone();
                std::thread::spawn(move || {
                    let mut b = vec![0u8; 65536];
                    while let Ok(n) = reader.recv(&mut b) {
                        if back.send_to(&b[..n], from).is_err() {
                            break;
                        }
                    }
                    flows.lock().expect("flows").remove(&from);
                });
                up
            }
        };
        let _ = upstream.send(&buf[..n]);
    }
}
