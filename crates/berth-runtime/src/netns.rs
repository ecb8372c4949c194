//! The private network namespace of a container that is not on the host
//! network: made by berth before the runtime starts the container, with its
//! loopback interface up (as Docker's `none` network has it), and kept as a
//! bind mount at `<container>/netns` so later steps (networks, exec) can join
//! it by path.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use rustix::mount::{mount_bind, unmount, UnmountFlags};
use rustix::thread::{unshare, UnshareFlags};

use crate::error::{Error, Result};
use crate::rootfs::is_mounted;

const NETNS: &str = "netns";
/// `struct ifreq` is 40 bytes on Linux: a 16-byte name, then a union whose
/// first member for SIOC[GS]IFFLAGS is a short.
const IFREQ_LEN: usize = 40;
const IFNAME_LEN: usize = 16;

/// Creates the namespace (once) and returns the path that names it.
pub fn create(container_dir: &Path) -> Result<PathBuf> {
    create_at(&container_dir.join(NETNS))
}

/// Creates a network namespace pinned at `path` (once), with loopback up.
pub fn create_at(path: &Path) -> Result<PathBuf> {
    let path = path.to_path_buf();
    if is_mounted(&path) {
        return Ok(path);
    }
    File::create(&path).map_err(|e| Error::Runtime(format!("create {}: {e}", path.display())))?;
    let target = path.clone();
    // unshare(CLONE_NEWNET) moves only the calling thread, so a short-lived
    // thread makes the namespace, sets it up and pins it with a bind mount.
    let made = std::thread::spawn(move || -> io::Result<()> {
        unshare(UnshareFlags::NEWNET)?;
        loopback_up()?;
        mount_bind("/proc/thread-self/ns/net", &target)?;
        Ok(())
    })
    .join()
    .map_err(|_| Error::Runtime("network namespace setup panicked".into()))?;
    made.map_err(|e| {
        Error::Runtime(format!(
            "cannot create the container's network namespace: {e}"
        ))
    })?;
    Ok(path)
}

/// Unmounts and removes the namespace; it disappears with its last user.
pub fn release(container_dir: &Path) {
    release_at(&container_dir.join(NETNS));
}

pub fn release_at(path: &Path) {
    let path = path.to_path_buf();
    if is_mounted(&path) {
        let _ = unmount(&path, UnmountFlags::DETACH);
    }
    let _ = std::fs::remove_file(&path);
}

/// Sets IFF_UP on `lo` in the calling thread's network namespace.
fn loopback_up() -> io::Result<()> {
    let sock = rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        None,
    )?;
    let mut req = [0u8; IFREQ_LEN];
    req[..2].copy_from_slice(b"lo");
    ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req)?;
    let flags = i16::from_ne_bytes([req[IFNAME_LEN], req[IFNAME_LEN + 1]]) | libc::IFF_UP as i16;
    req[IFNAME_LEN..IFNAME_LEN + 2].copy_from_slice(&flags.to_ne_bytes());
    ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &mut req)
}

#[allow(unsafe_code)]
fn ioctl(fd: i32, request: libc::c_ulong, req: &mut [u8; IFREQ_LEN]) -> io::Result<()> {
    // SAFETY: `req` is a live, writable buffer of the size of `struct ifreq`,
    // which is what SIOCGIFFLAGS and SIOCSIFFLAGS read and write; `fd` is an
    // open socket owned by the caller for the duration of the call.
    let r = unsafe { libc::ioctl(fd, request, req.as_mut_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
