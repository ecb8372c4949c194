//! Container logs in Docker's json-file format: one JSON object per line,
//! `{"log":"…\n","stream":"stdout","time":"…"}`, so tools that read Docker's
//! logs read berth's.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use berth_fs::ResultExt;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Docker splits long lines into entries of at most 16 KiB.
pub const MAX_ENTRY: usize = 16 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

pub struct LogWriter {
    file: File,
}

impl LogWriter {
    pub fn open(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .at("cannot open log", path)?;
        Ok(Self { file })
    }

    /// Appends one entry; each is a single write, so concurrent streams never
    /// interleave inside a line.
    pub fn write(&mut self, stream: &str, data: &[u8]) -> std::io::Result<()> {
        let entry = Entry {
            log: String::from_utf8_lossy(data).into_owned(),
            stream: stream.to_string(),
            time: now(),
        };
        let mut line = serde_json::to_vec(&entry).expect("json");
        line.push(b'\n');
        self.file.write_all(&line)
    }
}

fn now() -> String {
    let t = chrono::Utc::now();
    let s = t.format("%Y-%m-%dT%H:%M:%S%.9f").to_string();
    format!("{}Z", s.trim_end_matches('0').trim_end_matches('.'))
}

/// Splits a stream into log entries: at each newline (kept), and at
/// `MAX_ENTRY` bytes for very long lines.
#[derive(Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    pub fn push(&mut self, data: &[u8], mut emit: impl FnMut(&[u8])) {
        self.pending.extend_from_slice(data);
        loop {
            let cut = match self.pending.iter().position(|&b| b == b'\n') {
                Some(i) if i < MAX_ENTRY => i + 1,
                _ if self.pending.len() >= MAX_ENTRY => MAX_ENTRY,
                _ => break,
            };
            let rest = self.pending.split_off(cut);
            emit(&self.pending);
            self.pending = rest;
        }
    }

    pub fn flush(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.pending.is_empty() {
            emit(&self.pending);
            self.pending.clear();
        }
    }
}

/// Reads the complete entries written after byte `offset`; returns them and
/// the offset after the last complete line (a line still being written is
/// left for the next call), so following a log reads each byte once.
pub fn read_entries_from(path: &Path, offset: u64) -> Result<(Vec<Entry>, u64)> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = File::open(path) else {
        return Ok((Vec::new(), offset));
    };
    f.seek(SeekFrom::Start(offset))
        .at("cannot read log", path)?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).at("cannot read log", path)?;
    let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let entries = buf[..complete]
        .split(|&b| b == b'\n')
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect();
    Ok((entries, offset + complete as u64))
}

/// Reads all entries of a log file (a torn last line, from a crash, is skipped).
pub fn read_entries(path: &Path) -> Result<Vec<Entry>> {
    let Ok(f) = File::open(path) else {
        return Ok(Vec::new());
    };
    Ok(BufReader::new(f)
        .lines()
        .map_while(|l| l.ok())
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_like_docker() {
        let mut s = LineSplitter::default();
        let mut out: Vec<String> = Vec::new();
        s.push(b"a\nb", |x| out.push(String::from_utf8_lossy(x).into()));
        s.push(b"c\n", |x| out.push(String::from_utf8_lossy(x).into()));
        s.push(b"tail", |x| out.push(String::from_utf8_lossy(x).into()));
        s.flush(|x| out.push(String::from_utf8_lossy(x).into()));
        assert_eq!(out, ["a\n", "bc\n", "tail"]);
    }

    #[test]
    fn writes_docker_json_lines() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        let mut w = LogWriter::open(&p).unwrap();
        w.write("stdout", b"hi\n").unwrap();
        w.write("stderr", b"oops\n").unwrap();
        let e = read_entries(&p).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].log, "hi\n");
        assert_eq!(e[1].stream, "stderr");
    }
}
