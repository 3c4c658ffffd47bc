//! Tests of following a log: followers attached before, during and after a run with several
//! concurrent writers, resuming from a seq, step filters, and followers left far behind.

use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;
use tokio::sync::Barrier;
use tokio::time::timeout;
use uuid::Uuid;

use super::tests::{line, small_chunks};
use super::*;
use crate::mask::Masker;

/// Long enough for a loaded CI machine, short enough to fail a hung follower quickly.
const FOLLOW_TIMEOUT: Duration = Duration::from_secs(30);

/// Collects every line a follower delivers until its end, checking that batches are never empty.
async fn drain(mut follower: Follower) -> Vec<StoredLine> {
    let mut lines = Vec::new();
    loop {
        let batch = timeout(FOLLOW_TIMEOUT, follower.next_batch())
            .await
            .expect("the follower ends in time")
            .expect("read");
        match batch {
            Some(batch) => {
                assert!(!batch.is_empty(), "batches are never empty");
                lines.extend(batch);
            }
            None => return lines,
        }
    }
}

fn seqs(lines: &[StoredLine]) -> Vec<u64> {
    lines.iter().map(|line| line.seq).collect()
}

/// Waits until the log holds at least `seq` lines.
async fn stored_up_to(store: &LogStore, job: Uuid, seq: u64) {
    let mut follower = store.follow(job, seq.saturating_sub(1), None);
    timeout(FOLLOW_TIMEOUT, follower.next_batch())
        .await
        .expect("the line is stored in time")
        .expect("read")
        .expect("the log has not ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_get_every_line_once_in_order_then_the_end() {
    let dir = TempDir::new().expect("tempdir");
    let store = small_chunks(dir.path());
    let job = Uuid::new_v4();
    const WRITERS: u64 = 4;
    const LINES: u64 = 150;
    let total = WRITERS * LINES;

    let from_start = tokio::spawn(drain(store.follow(job, 0, None)));
    // Writers pause halfway until the mid-run followers are attached.
    let halfway = Arc::new(Barrier::new(WRITERS as usize + 1));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let store = store.clone();
            let halfway = Arc::clone(&halfway);
            tokio::spawn(async move {
                for i in 0..LINES {
                    if i == LINES / 2 {
                        halfway.wait().await;
                    }
                    let step = format!("w{writer}");
                    store
                        .append(
                            job,
                            &[line(&step, Some(1), &i.to_string())],
                            &Masker::default(),
                        )
                        .expect("append");
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();

    // One follower attaches mid-run from the start, another resumes from seq 37, a third
    // follows one writer's step only.
    stored_up_to(&store, job, total / 2).await;
    let mid_run = tokio::spawn(drain(store.follow(job, 0, None)));
    let resumed = tokio::spawn(drain(store.follow(job, 37, None)));
    let one_writer = tokio::spawn(drain(store.follow(job, 0, Some("w2"))));
    halfway.wait().await;

    for writer in writers {
        writer.await.expect("writer");
    }
    store.finish(job).expect("finish");
    let after_end = drain(store.follow(job, total - 5, None)).await;

    let from_start = from_start.await.expect("follower");
    assert_eq!(seqs(&from_start), (1..=total).collect::<Vec<_>>());
    assert_eq!(
        from_start,
        store.read(job, 0, usize::MAX, None).expect("read")
    );
    assert_eq!(mid_run.await.expect("follower"), from_start);
    let resumed = resumed.await.expect("follower");
    assert_eq!(seqs(&resumed), (38..=total).collect::<Vec<_>>());
    let own: Vec<_> = one_writer
        .await
        .expect("follower")
        .into_iter()
        .map(|line| line.line)
        .collect();
    assert_eq!(own, (0..LINES).map(|i| i.to_string()).collect::<Vec<_>>());
    assert_eq!(seqs(&after_end), (total - 4..=total).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_far_behind_the_notices_still_gets_every_line() {
    let dir = TempDir::new().expect("tempdir");
    let store = LogStore::open(dir.path().to_owned()).expect("open");
    let job = Uuid::new_v4();
    let follower = store.follow(job, 0, None);
    // Many more notices than the channel buffers, before the follower reads anything.
    for i in 0..500 {
        store
            .append(
                job,
                &[line("loud", Some(1), &i.to_string())],
                &Masker::default(),
            )
            .expect("append");
    }
    store.finish(job).expect("finish");
    let lines = drain(follower).await;
    assert_eq!(seqs(&lines), (1..=500).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_waits_for_a_job_that_has_not_logged_yet() {
    let dir = TempDir::new().expect("tempdir");
    let store = LogStore::open(dir.path().to_owned()).expect("open");
    let job = Uuid::new_v4();
    let follower = tokio::spawn(drain(store.follow(job, 0, None)));
    store
        .append(
            job,
            &[line(SERVER_STEP, None, "job started")],
            &Masker::default(),
        )
        .expect("append");
    store.finish(job).expect("finish");
    let lines = follower.await.expect("follower");
    assert_eq!(seqs(&lines), [1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_a_deleted_log_ends() {
    let dir = TempDir::new().expect("tempdir");
    let store = LogStore::open(dir.path().to_owned()).expect("open");
    let job = Uuid::new_v4();
    store
        .append(job, &[line("s", Some(1), "one")], &Masker::default())
        .expect("append");
    let mut follower = store.follow(job, 0, None);
    let first = follower.next_batch().await.expect("read").expect("a line");
    assert_eq!(seqs(&first), [1]);
    assert_eq!(follower.last_seq(), 1);
    store.delete(job).expect("delete");
    assert!(drain(follower).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_reports_appends_and_the_end() {
    let dir = TempDir::new().expect("tempdir");
    let store = LogStore::open(dir.path().to_owned()).expect("open");
    let job = Uuid::new_v4();
    let mut subscription = store.subscribe(job);
    store
        .append(
            job,
            &[line("s", Some(1), "a"), line("s", Some(1), "b")],
            &Masker::default(),
        )
        .expect("append");
    store.finish(job).expect("finish");
    let mut notices = Vec::new();
    while let Some(notice) = timeout(FOLLOW_TIMEOUT, subscription.recv())
        .await
        .expect("notice in time")
    {
        notices.push(notice);
    }
    assert_eq!(
        notices,
        [Notice::Appended { last_seq: 2 }, Notice::Finished]
    );
    assert_eq!(store.subscribe(job).recv().await, None, "already finished");
}
