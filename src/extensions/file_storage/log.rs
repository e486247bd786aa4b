//! A segmented append-only log with checksums: the on-disk form of a persistent queue.
//!
//! # On-disk format
//!
//! One directory per client (e.g. `exporter_otlphttp__traces/`) holds:
//!
//! - `seg-<first sequence, 20 digits>.log`: an 8-byte magic `OTPQSEG1`, then records
//!   `len: u32 LE | crc: u32 LE | seq: u64 LE | payload (len bytes)`, where `crc` is the
//!   CRC-32 (IEEE) of the `seq` bytes followed by the payload. Sequence numbers grow by one
//!   per record across segments. A segment is closed once it exceeds the segment size;
//!   the next record starts a new one. Segments are never appended to after a restart.
//! - `acks.log`: entries `seq: u64 LE | crc: u32 LE` (CRC-32 of the `seq` bytes), one per
//!   record that no longer needs sending (sent, or dropped as a permanent failure).
//!
//! A record is pending when it is in a segment and not in `acks.log`. A segment whose
//! records are all acknowledged is deleted (the newest one only once a newer one exists, so
//! sequence numbers are never reused); `acks.log` is rewritten (to `acks.tmp`, then
//! renamed over) at open and whenever enough of its entries refer to deleted segments.
//!
//! # What survives
//!
//! Every append and acknowledgement is one `write` to the file before the call returns, so
//! it is in the kernel's page cache: a `kill -9` (or any crash of the process) loses
//! nothing that returned. With `fsync: true` each write is also flushed to the device
//! (`fdatasync`), so acknowledged records survive power loss too, at the cost of a disk
//! flush per call. A write cut short by a crash leaves a torn tail: at open, a record
//! whose header or payload is incomplete, whose length is out of bounds or whose checksum
//! does not match ends the reading of that segment; the rest of it is skipped and counted
//! in [`Recovered::corrupt`], never a panic. A torn `acks.log` entry is skipped the same
//! way (its record is then sent again: at-least-once).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"OTPQSEG1";
const HEADER: usize = 16;
const ACK: usize = 12;
/// Largest record accepted; a larger length in a header means corruption.
pub const MAX_RECORD: usize = 256 << 20;
/// Default size after which a segment is closed.
pub const SEGMENT_SIZE: u64 = 8 << 20;
/// `acks.log` is rewritten once it holds this many entries for deleted segments.
const ACK_REWRITE_THRESHOLD: usize = 4096;

/// Errors of the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// The operation.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A record larger than [`MAX_RECORD`].
    #[error("record of {0} bytes is larger than the limit")]
    TooLarge(usize),
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LogError + 'a {
    move |source| LogError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// What [`Log::open`] found on disk.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Records not yet acknowledged, in sequence order.
    pub pending: Vec<(u64, Vec<u8>)>,
    /// Damaged places skipped (torn or corrupt record tails, bad ack entries).
    pub corrupt: usize,
}

struct Segment {
    path: PathBuf,
    /// Records in the segment not yet acknowledged.
    live: usize,
    /// Highest sequence number written to it.
    last: Option<u64>,
}

struct Active {
    first: u64,
    file: File,
    size: u64,
}

/// An open log. Not shared: callers serialise access (one mutex per queue).
pub struct Log {
    dir: PathBuf,
    fsync: bool,
    segment_size: u64,
    segments: BTreeMap<u64, Segment>,
    active: Option<Active>,
    acks: File,
    /// Acknowledged sequence numbers of segments that still exist.
    acked: BTreeSet<u64>,
    /// Entries in `acks.log` that belong to deleted segments.
    stale_acks: usize,
    next_seq: u64,
}

impl Log {
    /// Opens (or creates) the log in `dir`, returning what is still pending.
    ///
    /// # Errors
    /// When the directory or its files cannot be created, read or written.
    pub fn open(dir: &Path, fsync: bool, segment_size: u64) -> Result<(Self, Recovered), LogError> {
        fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        let mut recovered = Recovered::default();
        let acks_path = dir.join("acks.log");
        let mut acked = read_acks(&acks_path, &mut recovered.corrupt)?;

        let mut segments = BTreeMap::new();
        let mut next_seq = 0u64;
        let listed = list_segments(dir)?;
        let newest = listed.last().map(|(first, _)| *first);
        for (first, path) in listed {
            let mut segment = Segment {
                path,
                live: 0,
                last: None,
            };
            next_seq = next_seq.max(first);
            for (seq, payload) in read_segment(&segment.path, &mut recovered.corrupt)? {
                segment.last = Some(seq);
                next_seq = next_seq.max(seq + 1);
                if !acked.contains(&seq) {
                    segment.live += 1;
                    recovered.pending.push((seq, payload));
                }
            }
            // The newest segment stays (even if done) so numbering continues after it; it
            // goes once the next segment has its first record.
            let keep_for_numbering = Some(first) == newest && segment.last.is_some();
            if segment.live == 0 && !keep_for_numbering {
                remove(&segment.path)?;
            } else {
                segments.insert(first, segment);
            }
        }
        recovered.pending.sort_by_key(|(seq, _)| *seq);
        // Keep only the acknowledgements of segments that remain, and rewrite the file.
        acked.retain(|seq| segment_of(&segments, *seq).is_some());
        rewrite_acks(dir, &acked, fsync)?;
        let acks = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&acks_path)
            .map_err(io_err("open", &acks_path))?;
        Ok((
            Self {
                dir: dir.to_owned(),
                fsync,
                segment_size,
                segments,
                active: None,
                acks,
                acked,
                stale_acks: 0,
                next_seq,
            },
            recovered,
        ))
    }

    /// Appends `payload`; returns its sequence number once it is written (and flushed
    /// with `fsync`).
    ///
    /// # Errors
    /// When the write fails or the payload is larger than [`MAX_RECORD`].
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, LogError> {
        if payload.len() > MAX_RECORD {
            return Err(LogError::TooLarge(payload.len()));
        }
        if self
            .active
            .as_ref()
            .is_some_and(|a| a.size >= self.segment_size)
        {
            self.close_active();
        }
        let seq = self.next_seq;
        if self.active.is_none() {
            self.open_active(seq)?;
        }
        let mut record = Vec::with_capacity(HEADER + payload.len());
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&checksum(seq, payload).to_le_bytes());
        record.extend_from_slice(&seq.to_le_bytes());
        record.extend_from_slice(payload);
        let active = self.active.as_mut().expect("active segment just opened");
        let path = &self.segments[&active.first].path;
        active
            .file
            .write_all(&record)
            .map_err(io_err("write", path))?;
        if self.fsync {
            active.file.sync_data().map_err(io_err("fsync", path))?;
        }
        active.size += record.len() as u64;
        let segment = self
            .segments
            .get_mut(&active.first)
            .expect("active segment is listed");
        segment.live += 1;
        segment.last = Some(seq);
        self.next_seq = seq + 1;
        Ok(seq)
    }

    /// Marks `seq` as done: it will not be returned by a later [`Log::open`]. Deletes the
    /// segments left with nothing pending.
    ///
    /// # Errors
    /// When the acknowledgement cannot be written or a segment cannot be deleted.
    pub fn ack(&mut self, seq: u64) -> Result<(), LogError> {
        let Some(first) = segment_of(&self.segments, seq) else {
            return Ok(());
        };
        if !self.acked.insert(seq) {
            return Ok(());
        }
        let mut entry = [0u8; ACK];
        entry[..8].copy_from_slice(&seq.to_le_bytes());
        entry[8..].copy_from_slice(&checksum(seq, &[]).to_le_bytes());
        let acks_path = self.dir.join("acks.log");
        self.acks
            .write_all(&entry)
            .map_err(io_err("write", &acks_path))?;
        if self.fsync {
            self.acks.sync_data().map_err(io_err("fsync", &acks_path))?;
        }
        let is_newest = self.segments.keys().next_back() == Some(&first);
        let segment = self.segments.get_mut(&first).expect("segment found above");
        segment.live = segment.live.saturating_sub(1);
        if segment.live == 0 && !is_newest {
            self.delete_segment(first)?;
        }
        if self.stale_acks >= ACK_REWRITE_THRESHOLD {
            self.compact_acks()?;
        }
        Ok(())
    }

    /// Number of segment files on disk.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Rewrites `acks.log` with only the entries of segments that still exist.
    ///
    /// # Errors
    /// When the new file cannot be written or renamed.
    pub fn compact_acks(&mut self) -> Result<(), LogError> {
        rewrite_acks(&self.dir, &self.acked, self.fsync)?;
        let path = self.dir.join("acks.log");
        self.acks = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_err("open", &path))?;
        self.stale_acks = 0;
        Ok(())
    }

    fn open_active(&mut self, first: u64) -> Result<(), LogError> {
        let path = self.dir.join(format!("seg-{first:020}.log"));
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(io_err("create", &path))?;
        file.write_all(MAGIC).map_err(io_err("write", &path))?;
        if self.fsync {
            file.sync_data().map_err(io_err("fsync", &path))?;
            sync_dir(&self.dir)?;
        }
        self.segments.insert(
            first,
            Segment {
                path,
                live: 0,
                last: None,
            },
        );
        self.active = Some(Active {
            first,
            file,
            size: MAGIC.len() as u64,
        });
        // A done segment kept only for its numbering can go now.
        let done: Vec<u64> = self
            .segments
            .iter()
            .filter(|(f, s)| **f != first && s.live == 0)
            .map(|(f, _)| *f)
            .collect();
        for f in done {
            self.delete_segment(f)?;
        }
        Ok(())
    }

    fn close_active(&mut self) {
        self.active = None;
    }

    fn delete_segment(&mut self, first: u64) -> Result<(), LogError> {
        let Some(segment) = self.segments.remove(&first) else {
            return Ok(());
        };
        remove(&segment.path)?;
        let last = segment.last.unwrap_or(first);
        let before = self.acked.len();
        self.acked.retain(|seq| *seq < first || *seq > last);
        self.stale_acks += before - self.acked.len();
        Ok(())
    }
}

fn checksum(seq: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&seq.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// The first sequence number of the segment that may hold `seq`.
fn segment_of(segments: &BTreeMap<u64, Segment>, seq: u64) -> Option<u64> {
    let (first, segment) = segments.range(..=seq).next_back()?;
    (segment.last.is_some_and(|last| seq <= last)).then_some(*first)
}

fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, LogError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        let name = entry.file_name();
        let Some(first) = name
            .to_str()
            .and_then(|n| n.strip_prefix("seg-")?.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        out.push((first, entry.path()));
    }
    out.sort();
    Ok(out)
}

/// Every intact record of one segment; the first damaged place ends the reading.
fn read_segment(path: &Path, corrupt: &mut usize) -> Result<Vec<(u64, Vec<u8>)>, LogError> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(io_err("read", path))?;
    let mut records = Vec::new();
    if data.len() < MAGIC.len() || &data[..MAGIC.len()] != MAGIC {
        if !data.is_empty() {
            *corrupt += 1;
            tracing::warn!(path = %path.display(), "Persistent queue segment has no valid header; skipping it.");
        }
        return Ok(records);
    }
    let mut at = MAGIC.len();
    while at < data.len() {
        let Some(header) = data.get(at..at + HEADER) else {
            *corrupt += 1;
            tracing::warn!(path = %path.display(), offset = at, "Torn record header at the end of a persistent queue segment; skipping it.");
            break;
        };
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
        let seq = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
        let payload = (len <= MAX_RECORD)
            .then(|| data.get(at + HEADER..at + HEADER + len))
            .flatten();
        let Some(payload) = payload.filter(|p| checksum(seq, p) == crc) else {
            *corrupt += 1;
            tracing::warn!(path = %path.display(), offset = at, "Torn or corrupt record in a persistent queue segment; skipping the rest of the segment.");
            break;
        };
        records.push((seq, payload.to_vec()));
        at += HEADER + len;
    }
    Ok(records)
}

fn read_acks(path: &Path, corrupt: &mut usize) -> Result<BTreeSet<u64>, LogError> {
    let data = match fs::read(path) {
        Ok(data) => data,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err("read", path)(e)),
    };
    let mut acked = BTreeSet::new();
    let chunks = data.chunks_exact(ACK);
    if !chunks.remainder().is_empty() {
        *corrupt += 1;
        tracing::warn!(path = %path.display(), "Torn entry at the end of a persistent queue's acknowledgements; skipping it.");
    }
    for entry in chunks {
        let seq = u64::from_le_bytes(entry[..8].try_into().expect("8 bytes"));
        let crc = u32::from_le_bytes(entry[8..].try_into().expect("4 bytes"));
        if checksum(seq, &[]) == crc {
            acked.insert(seq);
        } else {
            *corrupt += 1;
            tracing::warn!(path = %path.display(), "Corrupt entry in a persistent queue's acknowledgements; skipping it.");
        }
    }
    Ok(acked)
}

fn rewrite_acks(dir: &Path, acked: &BTreeSet<u64>, fsync: bool) -> Result<(), LogError> {
    let tmp = dir.join("acks.tmp");
    let mut data = Vec::with_capacity(acked.len() * ACK);
    for seq in acked {
        data.extend_from_slice(&seq.to_le_bytes());
        data.extend_from_slice(&checksum(*seq, &[]).to_le_bytes());
    }
    let mut file = File::create(&tmp).map_err(io_err("create", &tmp))?;
    file.write_all(&data).map_err(io_err("write", &tmp))?;
    if fsync {
        file.sync_data().map_err(io_err("fsync", &tmp))?;
    }
    let path = dir.join("acks.log");
    fs::rename(&tmp, &path).map_err(io_err("rename", &path))?;
    if fsync {
        sync_dir(dir)?;
    }
    Ok(())
}

fn remove(path: &Path) -> Result<(), LogError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("delete", path)(e)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync", dir))
}

#[cfg(test)]
mod tests;
