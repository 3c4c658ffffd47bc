-- Approval steps (WF §6.8, API §2.5): when a step became `suspended` (its approval timeout
-- counts from then) and its rendered, masked `message`; and re-runs (API §3.3 [P2]): the job a
-- re-run or restart was made from. Mirrors the other backend's 0007_approvals.sql.
ALTER TABLE steps ADD COLUMN suspended_at INTEGER;
ALTER TABLE steps ADD COLUMN approval_message TEXT;
ALTER TABLE jobs ADD COLUMN source_job_id BLOB;
