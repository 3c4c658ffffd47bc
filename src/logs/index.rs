//! Sparse seq → byte-offset indexes, kept on disk as fixed 16-byte records `(seq, offset)`, both
//! little-endian `u64`, sorted by both fields. A live log has one in its `<job>.idx` sidecar (one
//! record per chunk of about 64 KiB of log, offsets into the plain file); a finished log carries
//! one inside its archive (one record per zstd frame, offsets into the archive).
//!
//! Lookups binary-search the records in the file with positional reads, so finding where seq N
//! starts costs a few small reads and no memory proportional to the log.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Size of one record in bytes.
pub const RECORD: u64 = 16;

/// Where the line (or frame) starting with `seq` begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub offset: u64,
}

impl Entry {
    pub fn encode(self) -> [u8; RECORD as usize] {
        let mut bytes = [0; RECORD as usize];
        bytes[..8].copy_from_slice(&self.seq.to_le_bytes());
        bytes[8..].copy_from_slice(&self.offset.to_le_bytes());
        bytes
    }

    fn decode(bytes: [u8; RECORD as usize]) -> Entry {
        let mut seq = [0; 8];
        let mut offset = [0; 8];
        seq.copy_from_slice(&bytes[..8]);
        offset.copy_from_slice(&bytes[8..]);
        Entry {
            seq: u64::from_le_bytes(seq),
            offset: u64::from_le_bytes(offset),
        }
    }
}

/// The `count` records stored from byte `base` of a file.
#[derive(Debug, Clone, Copy)]
pub struct Records<'a> {
    pub file: &'a File,
    pub base: u64,
    pub count: u64,
}

impl Records<'_> {
    pub fn get(&self, index: u64) -> io::Result<Entry> {
        let mut bytes = [0; RECORD as usize];
        self.file
            .read_exact_at(&mut bytes, self.base + index * RECORD)?;
        Ok(Entry::decode(bytes))
    }

    /// The last record whose seq is at most `seq`, with its position, or `None` when every
    /// record starts later (or there is none).
    pub fn floor(&self, seq: u64) -> io::Result<Option<(u64, Entry)>> {
        let (mut low, mut high) = (0, self.count);
        // Invariant: records before `low` have seq <= target, records from `high` on have more.
        while low < high {
            let middle = low + (high - low) / 2;
            if self.get(middle)?.seq <= seq {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        if low == 0 {
            return Ok(None);
        }
        Ok(Some((low - 1, self.get(low - 1)?)))
    }
}

/// The seq a stored JSONL record starts with: every line is written as `{"seq":N,…`, so the
/// prefix identifies a line without parsing it, and cannot occur inside a line's text (where
/// quotes are escaped).
pub fn seq_prefix(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"{\"seq\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || rest.get(digits) != Some(&b',') {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// Whether the plain log really has the line `entry.seq` at `entry.offset`. Readers check this
/// because a sidecar index may point past a log cut back after a crash, before the writer's
/// recovery repaired it.
pub fn points_at_line(log: &File, entry: Entry) -> io::Result<bool> {
    let mut head = [0u8; 32];
    let read = log.read_at(&mut head, entry.offset)?;
    let starts_line = if entry.offset == 0 {
        true
    } else {
        let mut before = [0u8; 1];
        log.read_exact_at(&mut before, entry.offset - 1)?;
        before[0] == b'\n'
    };
    Ok(starts_line && seq_prefix(&head[..read]) == Some(entry.seq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn floor_finds_the_chunk_holding_a_seq() {
        let mut file = tempfile::tempfile().expect("temp file");
        for (seq, offset) in [(1, 0), (40, 1000), (90, 2000)] {
            file.write_all(&Entry { seq, offset }.encode())
                .expect("write");
        }
        let records = Records {
            file: &file,
            base: 0,
            count: 3,
        };
        let at = |seq| {
            records
                .floor(seq)
                .expect("read")
                .map(|(i, e)| (i, e.offset))
        };
        assert_eq!(at(0), None);
        assert_eq!(at(1), Some((0, 0)));
        assert_eq!(at(39), Some((0, 0)));
        assert_eq!(at(40), Some((1, 1000)));
        assert_eq!(at(1_000), Some((2, 2000)));
    }

    #[test]
    fn seq_prefix_reads_only_well_formed_heads() {
        assert_eq!(seq_prefix(br#"{"seq":42,"ts":"x"}"#), Some(42));
        assert_eq!(seq_prefix(br#"{"seq":,"#), None);
        assert_eq!(seq_prefix(br#"{"seq":4"#), None);
        assert_eq!(seq_prefix(br#"{"ts":1,"seq":4,"#), None);
    }
}
