-- Task-level retry (WF §13.1 [P2]): the first job of a chain and each job's attempt, when a
-- failed job's retry is due and the retry job made from it; task concurrency (WF §8 [P2]):
-- whether a job waits for admission. Mirrors the other backend's 0009.
ALTER TABLE jobs ADD COLUMN retry_of_job_id BLOB;
ALTER TABLE jobs ADD COLUMN retry_attempt INTEGER NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN retry_due_at INTEGER;
ALTER TABLE jobs ADD COLUMN retry_job_id BLOB;
ALTER TABLE jobs ADD COLUMN queued INTEGER NOT NULL DEFAULT 0;

-- The recovery sweep finds due retries, and admission counts a task's unfinished jobs.
CREATE INDEX jobs_retry_due ON jobs (retry_due_at) WHERE retry_due_at IS NOT NULL;
CREATE INDEX jobs_unfinished_task ON jobs (workspace, task, queued)
    WHERE completed_at IS NULL;
CREATE INDEX jobs_retry_chain ON jobs (retry_of_job_id) WHERE retry_of_job_id IS NOT NULL;
