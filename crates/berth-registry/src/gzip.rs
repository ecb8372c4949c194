//! Parallel gzip, pigz's way: the input is cut into blocks, each block is
//! deflated on its own thread with the previous 32 KiB as a preset dictionary
//! (so matches still reach back across block edges) and ends on a sync flush
//! (byte-aligned, not final), and the pieces are written in order between one
//! gzip header and one trailer whose CRC is combined from the blocks'.
//!
//! Blocks that look incompressible (byte entropy near 8 bits: compressed
//! files, random data) are stored rather than deflated, as pgzip and zstd do,
//! since deflate's slowest path would gain nothing there.
//!
//! The result is one ordinary gzip member any decompressor reads. It is also
//! deterministic: the same input, level and block size give the same bytes,
//! so a layer compressed again (its cached blob collected) has the digest
//! the registry already knows. On one core gzip runs at ~46 MB/s (DESIGN §9),
//! the slowest step of a cold push; this scales it with the cores.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Input per block. Large enough that the per-block sync marker and lost
/// context cost nothing measurable; small enough to keep every core busy on a
/// few-MB layer.
pub const BLOCK_SIZE: usize = 1 << 20;
/// Deflate's window: the dictionary each block starts with.
const DICT_SIZE: usize = 32 * 1024;
/// The level berth pushes with. Measured on ~100 MB of /usr (bench/registry.sh,
/// 2 cores): zlib level 3 compresses to within 0.001% of what skopeo (pgzip at
/// Go's default level) makes, at 1.5x the speed of level 6 for 3% more bytes.
pub const DEFAULT_LEVEL: u32 = 3;
/// A gzip header with no name, no mtime and "unknown OS", so output depends on
/// the input only.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

struct Job {
    index: u64,
    dict: Vec<u8>,
    data: Vec<u8>,
    last: bool,
}

struct Done {
    index: u64,
    deflated: Vec<u8>,
    crc: Crc,
    last: bool,
}

/// Gzips `input` into `out` with `threads` compressing threads; returns `out`.
pub fn compress<R, W>(input: R, mut out: W, level: u32, threads: usize) -> io::Result<W>
where
    R: Read + Send,
    W: Write,
{
    let threads = threads.max(1);
    // Blocks read but not yet written: bounds memory whatever the speeds.
    let in_flight = threads * 2 + 1;
    let (job_tx, job_rx) = sync_channel::<Job>(in_flight);
    let (done_tx, done_rx) = sync_channel::<io::Result<Done>>(in_flight);
    let (slot_tx, slot_rx) = sync_channel::<()>(in_flight);
    for _ in 0..in_flight {
        slot_tx.send(()).expect("receiver alive");
    }

    std::thread::scope(|s| {
        // Reader: cuts blocks, each waits for a free slot.
        let reader_done = done_tx.clone();
        s.spawn(move || read_blocks(input, job_tx, slot_rx, reader_done));
        // Owned by the workers alone, so the reader sees them gone.
        let job_rx = Arc::new(Mutex::new(job_rx));
        for _ in 0..threads {
            let rx = Arc::clone(&job_rx);
            let tx = done_tx.clone();
            s.spawn(move || deflate_blocks(&rx, &tx, level));
        }
        drop(job_rx);
        drop(done_tx);
        // Writer: this thread, in order. Returning early drops the channels,
        // which stops the others.
        write_blocks(&mut out, done_rx, slot_tx)
    })?;
    Ok(out)
}

fn read_blocks<R: Read>(
    mut input: R,
    jobs: std::sync::mpsc::SyncSender<Job>,
    slots: Receiver<()>,
    errors: std::sync::mpsc::SyncSender<io::Result<Done>>,
) {
    let mut index = 0u64;
    let mut dict: Vec<u8> = Vec::new();
    loop {
        if slots.recv().is_err() {
            return; // the writer gave up
        }
        let mut data = Vec::with_capacity(BLOCK_SIZE);
        if let Err(e) = (&mut input).take(BLOCK_SIZE as u64).read_to_end(&mut data) {
            let _ = errors.send(Err(e));
            return;
        }
        // A short block means the end; an empty last block is fine (deflate
        // of nothing is the 2-byte final block).
        let last = data.len() < BLOCK_SIZE;
        let next_dict = data[data.len().saturating_sub(DICT_SIZE)..].to_vec();
        let job = Job {
            index,
            dict: std::mem::replace(&mut dict, next_dict),
            data,
            last,
        };
        if jobs.send(job).is_err() || last {
            return;
        }
        index += 1;
    }
}

fn deflate_blocks(
    jobs: &Mutex<Receiver<Job>>,
    done: &std::sync::mpsc::SyncSender<io::Result<Done>>,
    level: u32,
) {
    loop {
        let job = match jobs.lock().expect("job lock").recv() {
            Ok(j) => j,
            Err(_) => return,
        };
        let result = deflate_block(&job, level).map(|deflated| {
            let mut crc = Crc::new();
            crc.update(&job.data);
            Done {
                index: job.index,
                deflated,
                crc,
                last: job.last,
            }
        });
        if done.send(result).is_err() {
            return;
        }
    }
}

/// Above this many bits of entropy per byte a block is stored, not deflated:
/// it is already compressed (or random) data, on which deflate spends its
/// slowest path to gain nothing (and zlib's fastest level even expands it).
const STORE_ABOVE_BITS: f64 = 7.9;

/// Shannon entropy of the byte histogram, in bits per byte.
fn entropy(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let mut counts = [0u64; 256];
    for &b in data {
        counts[b as usize] += 1;
    }
    let n = data.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

fn deflate_block(job: &Job, level: u32) -> io::Result<Vec<u8>> {
    let level = if entropy(&job.data) > STORE_ABOVE_BITS {
        0
    } else {
        level
    };
    let mut c = Compress::new(Compression::new(level), false);
    if !job.dict.is_empty() {
        c.set_dictionary(&job.dict).map_err(io::Error::other)?;
    }
    let flush = if job.last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(job.data.len() / 2 + 1024);
    loop {
        if out.capacity() - out.len() < 16 * 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&job.data[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = c.total_in() as usize == job.data.len();
        match status {
            Status::StreamEnd => return Ok(out),
            // A sync flush is complete when the output was not filled.
            Status::Ok | Status::BufError if !job.last && all_in && out.len() < out.capacity() => {
                return Ok(out)
            }
            Status::Ok | Status::BufError => {}
        }
    }
}

fn write_blocks<W: Write>(
    out: &mut W,
    done: Receiver<io::Result<Done>>,
    slots: std::sync::mpsc::SyncSender<()>,
) -> io::Result<()> {
    out.write_all(&GZIP_HEADER)?;
    let mut next = 0u64;
    let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
    let mut crc = Crc::new();
    loop {
        let d = match done.recv() {
            Ok(d) => d?,
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "compression stopped before the end of the input",
                ))
            }
        };
        pending.insert(d.index, d);
        while let Some(d) = pending.remove(&next) {
            out.write_all(&d.deflated)?;
            crc.combine(&d.crc);
            next += 1;
            if d.last {
                out.write_all(&crc.sum().to_le_bytes())?;
                out.write_all(&crc.amount().to_le_bytes())?;
                return Ok(());
            }
            // The reader may cut another block.
            let _ = slots.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        // Compressible but not trivial: a repeating text with a counter.
        let mut v = Vec::with_capacity(len);
        let mut i = 0u64;
        while v.len() < len {
            v.extend_from_slice(format!("line {i} of a layer {}\n", i % 97).as_bytes());
            i = i
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407)
                >> 7;
        }
        v.truncate(len);
        v
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn round_trips_at_block_edges() {
        for len in [
            0,
            1,
            DICT_SIZE,
            BLOCK_SIZE - 1,
            BLOCK_SIZE,
            BLOCK_SIZE + 1,
            3 * BLOCK_SIZE + 12345,
        ] {
            let input = sample(len);
            let gz = compress(&input[..], Vec::new(), DEFAULT_LEVEL, 3).unwrap();
            assert_eq!(gunzip(&gz), input, "length {len}");
        }
    }

    #[test]
    fn output_does_not_depend_on_threads() {
        let input = sample(2 * BLOCK_SIZE + 999);
        let one = compress(&input[..], Vec::new(), DEFAULT_LEVEL, 1).unwrap();
        let four = compress(&input[..], Vec::new(), DEFAULT_LEVEL, 4).unwrap();
        assert_eq!(one, four);
        assert!(one.len() < input.len() / 2, "compresses: {}", one.len());
    }

    #[test]
    fn random_blocks_are_stored_not_deflated() {
        let mut x = 0x2545f4914f6cdd1du64;
        let mut input: Vec<u8> = (0..2 * BLOCK_SIZE + 77)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        input.extend_from_slice(&sample(BLOCK_SIZE));
        let gz = compress(&input[..], Vec::new(), DEFAULT_LEVEL, 2).unwrap();
        assert_eq!(gunzip(&gz), input);
        // Stored random blocks cost 5 bytes per 64 KiB; the text still shrinks.
        assert!(
            gz.len() < 2 * BLOCK_SIZE + 77 + BLOCK_SIZE / 2,
            "{}",
            gz.len()
        );
        assert!(entropy(&input[..BLOCK_SIZE]) > STORE_ABOVE_BITS);
        assert!(entropy(&sample(BLOCK_SIZE)) < STORE_ABOVE_BITS);
    }

    #[test]
    fn read_errors_surface() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let e = compress(Broken, Vec::new(), DEFAULT_LEVEL, 2).unwrap_err();
        assert!(e.to_string().contains("disk on fire"), "{e}");
    }

    #[test]
    fn write_errors_stop_the_workers() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("no space"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let input = sample(5 * BLOCK_SIZE);
        let e = compress(&input[..], Full, DEFAULT_LEVEL, 2).err().unwrap();
        assert!(e.to_string().contains("no space"), "{e}");
    }
}
