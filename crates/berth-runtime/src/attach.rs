//! The monitor's attach socket: how a foreground `run` (and later `attach`,
//! `start -a`) sees a container's output and feeds its input while the monitor,
//! not the CLI, owns the container.
//!
//! Server to client: frames of `[kind, 0, 0, 0, len (u32 BE)]` + payload, the
//! header Docker's attach stream uses, with one more kind for the exit status.
//! Client to server: raw stdin bytes; a half-close is stdin's end.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use berth_fs::ResultExt;

use crate::error::Result;

pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
/// Payload: the container's exit status as decimal text.
pub const EXIT: u8 = 3;
/// Payload: an error message; the container did not start.
pub const ERROR: u8 = 4;

const SOCKET: &str = "attach.sock";

/// Unix socket paths are limited to 108 bytes and data roots can be deep, so
/// the socket is reached through a descriptor of its directory.
struct DirHandle(File);

impl DirHandle {
    fn open(dir: &Path) -> Result<Self> {
        Ok(Self(File::open(dir).at("cannot open", dir)?))
    }
    fn socket(&self) -> String {
        format!("/proc/self/fd/{}/{SOCKET}", self.0.as_raw_fd())
    }
}

pub fn listen(container_dir: &Path) -> Result<UnixListener> {
    let dir = DirHandle::open(container_dir)?;
    let _ = std::fs::remove_file(container_dir.join(SOCKET));
    Ok(UnixListener::bind(dir.socket()).at("cannot listen on", &container_dir.join(SOCKET))?)
}

pub fn connect(container_dir: &Path) -> Result<UnixStream> {
    let dir = DirHandle::open(container_dir)?;
    Ok(UnixStream::connect(dir.socket()).at("cannot attach to", &container_dir.join(SOCKET))?)
}

pub fn write_frame(w: &mut impl Write, kind: u8, data: &[u8]) -> io::Result<()> {
    let mut frame = Vec::with_capacity(8 + data.len());
    frame.extend_from_slice(&[kind, 0, 0, 0]);
    frame.extend_from_slice(&(data.len() as u32).to_be_bytes());
    frame.extend_from_slice(data);
    w.write_all(&frame)
}

/// The next frame, or `None` at the end of the stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut header = [0u8; 8];
    match r.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let mut data = vec![0u8; len];
    r.read_exact(&mut data)?;
    Ok(Some((header[0], data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        write_frame(&mut buf, STDOUT, b"hello").unwrap();
        write_frame(&mut buf, EXIT, b"3").unwrap();
        let mut r = &buf[..];
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some((STDOUT, b"hello".to_vec()))
        );
        assert_eq!(read_frame(&mut r).unwrap(), Some((EXIT, b"3".to_vec())));
        assert_eq!(read_frame(&mut r).unwrap(), None);
    }

    #[test]
    fn sockets_work_in_deep_directories() {
        let d = tempfile::tempdir().unwrap();
        let deep = d.path().join("x".repeat(100)).join("y".repeat(100));
        std::fs::create_dir_all(&deep).unwrap();
        let l = listen(&deep).unwrap();
        let mut c = connect(&deep).unwrap();
        let (mut s, _) = l.accept().unwrap();
        write_frame(&mut s, STDERR, b"x").unwrap();
        assert_eq!(read_frame(&mut c).unwrap(), Some((STDERR, b"x".to_vec())));
    }
}
