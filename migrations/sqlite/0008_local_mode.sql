-- Local-mode pinning (WF §8 `mode`, API §7.9): the task's mode, fixed when the job is created,
-- and the worker the first claim of a `local` job pinned it to (NULL until then, and always for
-- `distributed` jobs). Claims of a pinned job go to that worker only; the recovery sweep fails
-- the unfinished worker steps of a job whose pinned worker is gone.
-- Mirrors the other backend's 0008_local_mode.sql.
ALTER TABLE jobs ADD COLUMN mode TEXT NOT NULL DEFAULT 'distributed';
ALTER TABLE jobs ADD COLUMN pinned_worker_id BLOB;
CREATE INDEX jobs_pinned_unfinished ON jobs (pinned_worker_id)
    WHERE pinned_worker_id IS NOT NULL AND completed_at IS NULL;
-- Retention (API §8.5 item 7) deletes finished jobs by age, oldest first.
CREATE INDEX jobs_finished ON jobs (completed_at) WHERE completed_at IS NOT NULL;
