//! Tests of the log store on real files in temporary directories: the stored format, seqs across
//! restarts, worker batches, masking and caps, reads of live and finished logs, concurrency.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use tempfile::TempDir;
use uuid::Uuid;

use super::*;
use crate::mask::Masker;
use crate::runner::spec::{LogLine, Stream};

pub(super) fn ts(millis: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_772_366_401_000 + millis)
        .single()
        .expect("valid timestamp")
}

pub(super) fn line(step: &str, attempt: Option<u32>, text: &str) -> LogLine {
    LogLine {
        ts: ts(0),
        stream: Stream::Stdout,
        step: step.to_owned(),
        attempt,
        line: text.to_owned(),
    }
}

/// A store with a small index chunk, so short test logs already have many index records.
pub(super) fn small_chunks(dir: &Path) -> LogStore {
    let config = LogConfig {
        chunk_bytes: 300,
        ..LogConfig::default()
    };
    LogStore::open_with(dir.to_owned(), config).expect("open store")
}

fn numbered(count: usize) -> Vec<LogLine> {
    (0..count)
        .map(|i| {
            let step = if i % 3 == 0 { "build" } else { "deploy[1]" };
            line(step, Some(1), &format!("line {i}"))
        })
        .collect()
}

fn seqs(lines: &[StoredLine]) -> Vec<u64> {
    lines.iter().map(|line| line.seq).collect()
}

fn texts(lines: &[StoredLine]) -> Vec<&str> {
    lines.iter().map(|line| line.line.as_str()).collect()
}

fn all(store: &LogStore, job: Uuid) -> Vec<StoredLine> {
    store.read(job, 0, usize::MAX, None).expect("read")
}

#[test]
fn lines_are_stored_in_the_api_format_with_seqs_from_one() {
    let dir = TempDir::new().expect("tempdir");
    let store = LogStore::open(dir.path().to_owned()).expect("open");
    let job = Uuid::new_v4();
    let mut server = line(SERVER_STEP, None, "step deploy[1] will retry in 5s");
    server.stream = Stream::Stderr;
    server.ts = ts(1_250);
    let first = store
        .append(
            job,
            &[line("deploy[1]", Some(2), "pushing \"image\"")],
            &Masker::default(),
        )
        .expect("append");
    let second = store
        .append(job, &[server], &Masker::default())
        .expect("append");
    assert_eq!((first.first_seq, first.last_seq), (1, 1));
    assert_eq!((second.first_seq, second.last_seq), (2, 2));
    let text = fs::read_to_string(dir.path().join(format!("{job}.jsonl"))).expect("log file");
    insta::assert_snapshot!("stored_format", text);
}

#[test]
fn seq_continues_after_a_restart_and_a_torn_last_line_is_cut() {
    let dir = TempDir::new().expect("tempdir");
    let job = Uuid::new_v4();
    {
        let store = small_chunks(dir.path());
        store
            .append(job, &numbered(39), &Masker::default())
            .expect("append");
        // A last line longer than the block the tail is read backwards in (escaped quotes
        // double its JSON size), so finding its start takes several blocks.
        let long = "\"".repeat(LINE_LIMIT);
        store
            .append(job, &[line("build", Some(1), &long)], &Masker::default())
            .expect("append");
    }
    // A crash in the middle of a write leaves half a line at the end of the file.
    let plain = dir.path().join(format!("{job}.jsonl"));
    let mut file = OpenOptions::new().append(true).open(&plain).expect("log");
    file.write_all(br#"{"seq":41,"ts":"2026-03"#)
        .expect("torn line");
    drop(file);

    let store = small_chunks(dir.path());
    assert_eq!(all(&store, job).len(), 40, "the torn line is not read");
    let result = store
        .append(
            job,
            &[line("build", Some(1), "after restart")],
            &Masker::default(),
        )
        .expect("append");
    assert_eq!((result.first_seq, result.last_seq), (41, 41));
    let lines = all(&store, job);
    assert_eq!(seqs(&lines), (1..=41).collect::<Vec<_>>());
    assert_eq!(lines[40].line, "after restart");
}

#[test]
fn a_retried_worker_batch_is_stored_once_also_across_a_restart() {
    let dir = TempDir::new().expect("tempdir");
    let job = Uuid::new_v4();
    let batch = |offset: u64, texts: &[&str]| {
        let key = BatchKey {
            step: "deploy".to_owned(),
            attempt: 1,
            offset,
        };
        let lines: Vec<_> = texts.iter().map(|t| line("deploy", Some(1), t)).collect();
        (key, lines)
    };
    {
        let store = LogStore::open(dir.path().to_owned()).expect("open");
        let (key, lines) = batch(0, &["a", "b", "c"]);
        let first = store
            .append_batch(job, &key, &lines, &Masker::default())
            .expect("batch");
        assert_eq!((first.first_seq, first.last_seq), (1, 3));
        let retry = store
            .append_batch(job, &key, &lines, &Masker::default())
            .expect("retry");
        assert_eq!((retry.stored(), retry.duplicates), (0, 3));
        // The next batch overlaps the first by one line, as after a lost response.
        let (key, lines) = batch(2, &["c", "d", "e"]);
        let overlap = store
            .append_batch(job, &key, &lines, &Masker::default())
            .expect("batch");
        assert_eq!(
            (overlap.first_seq, overlap.last_seq, overlap.duplicates),
            (4, 5, 1)
        );
        // Another attempt of the same step is another lease, numbered from 0 again.
        let other = BatchKey {
            step: "deploy".to_owned(),
            attempt: 2,
            offset: 0,
        };
        let lines = [line("deploy", Some(2), "retry attempt")];
        let result = store
            .append_batch(job, &other, &lines, &Masker::default())
            .expect("batch");
        assert_eq!(result.first_seq, 6);
    }
    let store = LogStore::open(dir.path().to_owned()).expect("reopen");
    let (key, lines) = batch(2, &["c", "d", "e"]);
    let retry = store
        .append_batch(job, &key, &lines, &Masker::default())
        .expect("retry");
    assert_eq!((retry.stored(), retry.duplicates), (0, 3));
    let (key, lines) = batch(5, &["f"]);
    assert_eq!(
        store
            .append_batch(job, &key, &lines, &Masker::default())
            .expect("batch")
            .first_seq,
        7
    );
    assert_eq!(
        texts(&all(&store, job)),
        ["a", "b", "c", "d", "e", "retry attempt", "f"]
    );
}

#[test]
fn a_batch_whose_record_a_crash_lost_is_counted_from_the_log() {
    let dir = TempDir::new().expect("tempdir");
    let job = Uuid::new_v4();
    let key = BatchKey {
        step: "build".to_owned(),
        attempt: 3,
        offset: 0,
    };
    let first = [line("build", Some(3), "one"), line("build", Some(3), "two")];
    let second = [line("build", Some(3), "three")];
    let batches = dir.path().join(format!("{job}.batches"));
    {
        let store = LogStore::open(dir.path().to_owned()).expect("open");
        store
            .append_batch(job, &key, &first, &Masker::default())
            .expect("batch");
        let recorded = fs::metadata(&batches).expect("sidecar").len();
        let next = BatchKey {
            offset: 2,
            ..key.clone()
        };
        store
            .append_batch(job, &next, &second, &Masker::default())
            .expect("batch");
        // Simulate a crash after the lines were written but before their record was.
        OpenOptions::new()
            .write(true)
            .open(&batches)
            .and_then(|file| file.set_len(recorded))
            .expect("cut sidecar");
    }
    let store = LogStore::open(dir.path().to_owned()).expect("reopen");
    let next = BatchKey { offset: 2, ..key };
    let retry = store
        .append_batch(job, &next, &second, &Masker::default())
        .expect("retry");
    assert_eq!((retry.stored(), retry.duplicates), (0, 1));
    assert_eq!(texts(&all(&store, job)), ["one", "two", "three"]);
}

#[test]
fn lines_are_masked_again_before_they_are_stored() {
    let dir = TempDir::new().expect("tempdir");
    let store = LogStore::open(dir.path().to_owned()).expect("open");
    let job = Uuid::new_v4();
    let mask = Masker::new(["hunter22", "abc"]);
    let key = BatchKey {
        step: "login".to_owned(),
        attempt: 1,
        offset: 0,
    };
    let lines = [line("login", Some(1), "password=hunter22 abc")];
    store.append_batch(job, &key, &lines, &mask).expect("batch");
    store
        .append(job, &[line(SERVER_STEP, None, "hook got hunter22")], &mask)
        .expect("append");
    assert_eq!(
        texts(&all(&store, job)),
        ["password=•••••• abc", "hook got ••••••"]
    );
    let raw = fs::read_to_string(dir.path().join(format!("{job}.jsonl"))).expect("file");
    assert!(!raw.contains("hunter22"));
}

#[test]
fn long_lines_are_cut_after_masking() {
    let dir = TempDir::new().expect("tempdir");
    let store = LogStore::open(dir.path().to_owned()).expect("open");
    let job = Uuid::new_v4();
    // The secret straddles the cut: masking first leaves no fragment of it.
    let secret = "s3cr3t-value".to_owned();
    let text = format!("{}{secret}{}", "x".repeat(LINE_LIMIT - 4), "y".repeat(100));
    store
        .append(job, &[line("big", Some(1), &text)], &Masker::new([secret]))
        .expect("append");
    let stored = all(&store, job).remove(0).line;
    // Masked: LINE_LIMIT - 4 + 18 + 100 bytes; cut on the boundary after the mask's first `•`.
    assert_eq!(
        stored,
        format!("{}•…[truncated 115 bytes]", "x".repeat(LINE_LIMIT - 4))
    );
    assert!(!stored.contains("s3cr"));
}

#[test]
fn a_log_over_its_cap_drops_lines_with_one_notice_also_after_restart() {
    let dir = TempDir::new().expect("tempdir");
    let job = Uuid::new_v4();
    let config = LogConfig {
        max_job_bytes: 1_000,
        ..LogConfig::default()
    };
    {
        let store = LogStore::open_with(dir.path().to_owned(), config.clone()).expect("open");
        let result = store
            .append(job, &numbered(30), &Masker::default())
            .expect("append");
        assert!(result.dropped > 0);
        let again = store
            .append(job, &numbered(5), &Masker::default())
            .expect("append");
        assert_eq!((again.stored(), again.dropped), (0, 5));
    }
    let store = LogStore::open_with(dir.path().to_owned(), config).expect("reopen");
    let after_restart = store
        .append(job, &numbered(5), &Masker::default())
        .expect("append");
    assert_eq!((after_restart.stored(), after_restart.dropped), (0, 5));
    let lines = all(&store, job);
    let notices: Vec<_> = lines.iter().filter(|l| l.step == SERVER_STEP).collect();
    assert_eq!(notices.len(), 1);
    assert_eq!(
        notices[0].line,
        "log size limit reached (1000 bytes); later lines of this job are dropped"
    );
    assert_eq!(lines.last(), Some(notices[0]));
    let size = fs::metadata(dir.path().join(format!("{job}.jsonl")))
        .expect("file")
        .len();
    assert!(
        size <= 1_000 + 200,
        "only the notice passes the cap: {size}"
    );
}

#[test]
fn reads_by_seq_and_step_seek_through_the_index() {
    let dir = TempDir::new().expect("tempdir");
    let store = small_chunks(dir.path());
    let job = Uuid::new_v4();
    let written = numbered(200);
    for chunk in written.chunks(7) {
        store
            .append(job, chunk, &Masker::default())
            .expect("append");
    }
    let index = fs::metadata(dir.path().join(format!("{job}.idx"))).expect("index");
    assert!(index.len() / 16 > 20, "many index records: {}", index.len());

    let everything = all(&store, job);
    assert_eq!(seqs(&everything), (1..=200).collect::<Vec<_>>());
    for after in [0, 1, 5, 42, 43, 99, 150, 199, 200, 500] {
        let page = store.read(job, after, 10, None).expect("read");
        let expected: Vec<_> = everything
            .iter()
            .filter(|l| l.seq > after)
            .take(10)
            .cloned()
            .collect();
        assert_eq!(page, expected, "after {after}");
    }
    let builds = store.read(job, 10, 3, Some("build")).expect("read");
    assert_eq!(seqs(&builds), [13, 16, 19]);
    let deploy = store
        .read(job, 0, usize::MAX, Some("deploy"))
        .expect("read");
    assert_eq!(deploy.len(), 133, "the loop name matches its instances");
    assert!(
        store
            .read(job, 0, 10, Some("deplo"))
            .expect("read")
            .is_empty()
    );
    assert!(store.read(job, 0, 0, None).expect("read").is_empty());
}

#[test]
fn an_index_pointing_past_the_log_is_ignored_by_reads_and_repaired_by_the_writer() {
    let dir = TempDir::new().expect("tempdir");
    let job = Uuid::new_v4();
    let store = small_chunks(dir.path());
    store
        .append(job, &numbered(50), &Masker::default())
        .expect("append");
    let index_path = dir.path().join(format!("{job}.idx"));
    let records = fs::metadata(&index_path).expect("index").len();
    let mut index = OpenOptions::new()
        .append(true)
        .open(&index_path)
        .expect("index");
    index
        .write_all(
            &index::Entry {
                seq: 51,
                offset: 1 << 40,
            }
            .encode(),
        )
        .expect("bogus record");
    drop(index);
    assert_eq!(seqs(&store.read(job, 49, 5, None).expect("read")), [50]);

    drop(store);
    let store = small_chunks(dir.path());
    store
        .append(job, &numbered(1), &Masker::default())
        .expect("append");
    assert_eq!(fs::metadata(&index_path).expect("index").len(), records);
    assert_eq!(seqs(&store.read(job, 49, 5, None).expect("read")), [50, 51]);
}

#[test]
fn a_finished_log_is_one_zstd_archive_read_frame_by_frame() {
    let dir = TempDir::new().expect("tempdir");
    let store = small_chunks(dir.path());
    let job = Uuid::new_v4();
    // About 300 KiB of log: several 64 KiB frames.
    let lines: Vec<_> = (0..3_000)
        .map(|i| {
            line(
                if i % 2 == 0 { "a" } else { "b[0]" },
                Some(1),
                &format!("{i:04} {}", "z".repeat(40 + i % 50)),
            )
        })
        .collect();
    store
        .append(job, &lines, &Masker::default())
        .expect("append");
    let plain_text = fs::read(dir.path().join(format!("{job}.jsonl"))).expect("plain");
    let live: Vec<_> = [0, 1, 777, 1_500, 2_999, 3_000]
        .iter()
        .map(|after| store.read(job, *after, 50, None).expect("read"))
        .collect();
    let live_b = store.read(job, 100, 20, Some("b")).expect("read");

    store.finish(job).expect("finish");
    for suffix in [".jsonl", ".idx", ".batches", ".jsonl.zst.tmp"] {
        assert!(
            !dir.path().join(format!("{job}{suffix}")).exists(),
            "{suffix} removed"
        );
    }
    let archive = fs::read(dir.path().join(format!("{job}.jsonl.zst"))).expect("archive");
    assert!(archive.len() < plain_text.len() / 4, "compressed");
    let decoded = zstd::stream::decode_all(archive.as_slice()).expect("standard zstd decodes it");
    assert_eq!(decoded, plain_text);

    let finished: Vec<_> = [0, 1, 777, 1_500, 2_999, 3_000]
        .iter()
        .map(|after| store.read(job, *after, 50, None).expect("read"))
        .collect();
    assert_eq!(finished, live);
    assert_eq!(store.read(job, 100, 20, Some("b")).expect("read"), live_b);
    assert_eq!(all(&store, job).len(), 3_000);
    assert!(store.is_finished(job));

    let late = store.append(job, &numbered(1), &Masker::default());
    assert!(matches!(late, Err(LogError::Finished)), "{late:?}");
    store.finish(job).expect("finishing twice is harmless");
    // Also from another store on the same directory, as after a restart.
    let reopened = small_chunks(dir.path());
    assert!(matches!(
        reopened.append(job, &numbered(1), &Masker::default()),
        Err(LogError::Finished)
    ));
    assert_eq!(
        reopened.read(job, 2_999, 50, None).expect("read"),
        finished[4]
    );
}

#[test]
fn a_job_that_never_logged_finishes_with_an_empty_archive() {
    let dir = TempDir::new().expect("tempdir");
    let store = LogStore::open(dir.path().to_owned()).expect("open");
    let job = Uuid::new_v4();
    assert!(
        all(&store, job).is_empty(),
        "an unknown job has an empty log"
    );
    store.finish(job).expect("finish");
    assert!(store.is_finished(job));
    assert!(all(&store, job).is_empty());
}

#[test]
fn opening_the_store_completes_an_interrupted_finish() {
    let dir = TempDir::new().expect("tempdir");
    let (done, torn) = (Uuid::new_v4(), Uuid::new_v4());
    {
        let store = LogStore::open(dir.path().to_owned()).expect("open");
        store
            .append(done, &numbered(3), &Masker::default())
            .expect("append");
        store
            .append(torn, &numbered(3), &Masker::default())
            .expect("append");
        store.finish(done).expect("finish");
    }
    // `done` crashed after the rename, `torn` while writing its archive.
    let plain = |job: Uuid| dir.path().join(format!("{job}.jsonl"));
    fs::write(plain(done), "{\"seq\":1,stale}\n").expect("stale plain");
    let stale_index = dir.path().join(format!("{done}.idx"));
    fs::write(&stale_index, [0u8; 16]).expect("stale index");
    fs::write(dir.path().join(format!("{torn}.jsonl.zst.tmp")), b"half").expect("tmp");

    let store = LogStore::open(dir.path().to_owned()).expect("reopen");
    assert!(!plain(done).exists());
    assert!(!stale_index.exists());
    assert!(!dir.path().join(format!("{torn}.jsonl.zst.tmp")).exists());
    assert_eq!(all(&store, done).len(), 3);
    assert_eq!(all(&store, torn).len(), 3);
}

#[test]
fn concurrent_appends_get_contiguous_seqs_in_each_writers_order() {
    let dir = TempDir::new().expect("tempdir");
    let store = small_chunks(dir.path());
    let job = Uuid::new_v4();
    std::thread::scope(|scope| {
        for writer in 0..6 {
            let store = store.clone();
            scope.spawn(move || {
                for i in 0..150 {
                    let step = format!("w{writer}");
                    let text = format!("{i}");
                    store
                        .append(job, &[line(&step, Some(1), &text)], &Masker::default())
                        .expect("append");
                }
            });
        }
    });
    let lines = all(&store, job);
    assert_eq!(seqs(&lines), (1..=900).collect::<Vec<_>>());
    for writer in 0..6 {
        let own: Vec<_> = lines
            .iter()
            .filter(|l| l.step == format!("w{writer}"))
            .map(|l| l.line.parse::<u32>().expect("number"))
            .collect();
        assert_eq!(own, (0..150).collect::<Vec<_>>());
    }
}

#[test]
fn delete_removes_every_file_of_the_job() {
    let dir = TempDir::new().expect("tempdir");
    let store = LogStore::open(dir.path().to_owned()).expect("open");
    let (live, finished) = (Uuid::new_v4(), Uuid::new_v4());
    let key = BatchKey {
        step: "s".to_owned(),
        attempt: 1,
        offset: 0,
    };
    store
        .append_batch(live, &key, &[line("s", Some(1), "x")], &Masker::default())
        .expect("batch");
    store
        .append(finished, &numbered(2), &Masker::default())
        .expect("append");
    store.finish(finished).expect("finish");
    store.delete(live).expect("delete");
    store.delete(finished).expect("delete");
    let left: Vec<_> = fs::read_dir(dir.path()).expect("dir").collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(all(&store, live).is_empty());
}
