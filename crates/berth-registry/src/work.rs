//! Small shared pieces of push and pull: a bounded pool of threads over a list
//! of jobs, and readers that count, tee and can be cancelled.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::error::Result;

/// Runs `f` over `items` on up to `workers` threads; results come back in
/// input order. The first error raises `cancel` (which long transfers watch)
/// and is returned once every thread has stopped.
pub fn parallel<T, R, F>(items: Vec<T>, workers: usize, cancel: &AtomicBool, f: F) -> Result<Vec<R>>
where
    T: Send,
    R: Send,
    F: Fn(T) -> Result<R> + Sync,
{
    let n = items.len();
    let queue: Mutex<VecDeque<(usize, T)>> = Mutex::new(items.into_iter().enumerate().collect());
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..n).map(|_| None).collect());
    let first_error = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, n.max(1)) {
            s.spawn(|| loop {
                if cancel.load(Ordering::Relaxed) {
                    return;
                }
                let Some((i, item)) = queue.lock().expect("queue lock").pop_front() else {
                    return;
                };
                match f(item) {
                    Ok(r) => results.lock().expect("results lock")[i] = Some(r),
                    Err(e) => {
                        cancel.store(true, Ordering::Relaxed);
                        first_error.lock().expect("error lock").get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().expect("error lock") {
        return Err(e);
    }
    Ok(results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect())
}

/// How often byte progress is reported.
pub const PROGRESS_STEP: u64 = 256 * 1024;

/// Counts what is read through it, reports progress, remembers whether the
/// *source* failed (so a dropped connection can be told from bad content
/// found downstream), and stops when `cancel` is raised.
pub struct Tracked<'a, R> {
    pub inner: R,
    pub count: u64,
    pub source_failed: bool,
    reported: u64,
    cancel: &'a AtomicBool,
    on_progress: &'a dyn Fn(u64),
}

impl<'a, R: Read> Tracked<'a, R> {
    pub fn new(inner: R, cancel: &'a AtomicBool, on_progress: &'a dyn Fn(u64)) -> Self {
        Self {
            inner,
            count: 0,
            source_failed: false,
            reported: 0,
            cancel,
            on_progress,
        }
    }
}

impl<R: Read> Read for Tracked<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            // Not `Interrupted`: std's readers retry those forever.
            return Err(io::Error::other("cancelled: another transfer failed"));
        }
        let n = self.inner.read(buf).inspect_err(|_| {
            self.source_failed = true;
        })?;
        self.count += n as u64;
        if n == 0 || self.count - self.reported >= PROGRESS_STEP {
            self.reported = self.count;
            (self.on_progress)(self.count);
        }
        Ok(n)
    }
}

/// Copies what is read to `out` as well, and at the end of the input
/// flushes it to disk: the sync then overlaps with the work still queued
/// behind the reader (decompressing, unpacking) instead of following it.
pub struct Tee<'a, R> {
    pub inner: R,
    pub out: Option<&'a mut io::BufWriter<std::fs::File>>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(out) = self.out.as_mut() {
            out.write_all(&buf[..n])?;
            if n == 0 && !buf.is_empty() {
                out.flush()?;
                out.get_ref().sync_data()?;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn parallel_keeps_order_and_stops_on_error() {
        let cancel = AtomicBool::new(false);
        let out = parallel((0..20).collect(), 3, &cancel, |i: u32| Ok(i * 2)).unwrap();
        assert_eq!(out, (0..20).map(|i| i * 2).collect::<Vec<_>>());

        let cancel = AtomicBool::new(false);
        let e = parallel((0..20).collect(), 3, &cancel, |i: u32| {
            if i == 5 {
                Err(Error::BadPlatform("x".into()))
            } else {
                Ok(i)
            }
        })
        .unwrap_err();
        assert!(matches!(e, Error::BadPlatform(_)));
        assert!(cancel.load(Ordering::Relaxed));

        let cancel = AtomicBool::new(false);
        assert!(parallel(Vec::<u32>::new(), 3, &cancel, Ok)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn tracked_tells_source_failures() {
        struct Fails;
        impl Read for Fails {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"))
            }
        }
        let cancel = AtomicBool::new(false);
        let mut t = Tracked::new(Fails, &cancel, &|_| {});
        assert!(t.read(&mut [0; 4]).is_err());
        assert!(t.source_failed);

        let mut t = Tracked::new(&b"abc"[..], &cancel, &|_| {});
        let mut s = String::new();
        t.read_to_string(&mut s).unwrap();
        assert_eq!((t.count, t.source_failed), (3, false));
        cancel.store(true, Ordering::Relaxed);
        assert!(t.read(&mut [0; 4]).is_err());
    }
}
