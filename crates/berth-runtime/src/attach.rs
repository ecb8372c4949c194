//! The monitor's attach socket: how a foreground `run` (and later `attach`,
//! `start -a`) sees a container's output and feeds its input while the monitor,
//! not the CLI, owns the container.
//!
//! Server to client: frames of `[kind, 0, 0, 0, len (u32 BE)]` + payload, the
//! header Docker's attach stream uses, with one more kind for the exit status.
//! Client to server: frames too: input bytes, the end of input, and terminal
//! size changes.

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

/// Client to server: bytes for the container's input.
pub const IN_DATA: u8 = 10;
/// Client to server: the end of input.
pub const IN_CLOSE: u8 = 11;
/// Client to server: the terminal size, rows then columns, u16 big-endian.
pub const IN_RESIZE: u8 = 12;

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
    bind(container_dir, SOCKET)
}

/// Binds a socket named `name` in `dir`, whatever the length of `dir`.
pub fn bind(dir: &Path, name: &str) -> Result<UnixListener> {
    let handle = DirHandle::open(dir)?;
    let _ = std::fs::remove_file(dir.join(name));
    let path = format!("/proc/self/fd/{}/{name}", handle.0.as_raw_fd());
    Ok(UnixListener::bind(path).at("cannot listen on", &dir.join(name))?)
}

pub fn resize_payload(rows: u16, cols: u16) -> [u8; 4] {
    let r = rows.to_be_bytes();
    let c = cols.to_be_bytes();
    [r[0], r[1], c[0], c[1]]
}

pub fn parse_resize(p: &[u8]) -> Option<(u16, u16)> {
    (p.len() == 4).then(|| {
        (
            u16::from_be_bytes([p[0], p[1]]),
            u16::from_be_bytes([p[2], p[3]]),
        )
    })
}

/// Collects bytes read in pieces and yields whole frames.
#[derive(Default)]
pub struct FrameBuffer {
    buf: Vec<u8>,
}

impl FrameBuffer {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    pub fn next_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        if self.buf.len() < 8 {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if self.buf.len() < 8 + len {
            return None;
        }
        let kind = self.buf[0];
        let data = self.buf[8..8 + len].to_vec();
        self.buf.drain(..8 + len);
        Some((kind, data))
    }
}

/// Receives one file descriptor sent with SCM_RIGHTS (how the runtime hands
/// over a container's terminal).
pub fn recv_fd(stream: &UnixStream) -> std::io::Result<std::os::fd::OwnedFd> {
    use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space = [0u8; rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut data = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut data)];
    recvmsg(stream, &mut iov, &mut control, RecvFlags::empty())?;
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg {
            if let Some(fd) = fds.next() {
                return Ok(fd);
            }
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "no file descriptor received",
    ))
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
    fn frame_buffer_reassembles_pieces() {
        let mut wire = Vec::new();
        write_frame(&mut wire, IN_DATA, b"abc").unwrap();
        write_frame(&mut wire, IN_RESIZE, &resize_payload(24, 80)).unwrap();
        let mut fb = FrameBuffer::default();
        fb.push(&wire[..5]);
        assert!(fb.next_frame().is_none());
        fb.push(&wire[5..]);
        assert_eq!(fb.next_frame(), Some((IN_DATA, b"abc".to_vec())));
        let (k, p) = fb.next_frame().unwrap();
        assert_eq!((k, parse_resize(&p)), (IN_RESIZE, Some((24, 80))));
        assert!(fb.next_frame().is_none());
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
