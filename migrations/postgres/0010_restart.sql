-- Restart from the failed step (docs/restart.md): the job a reused step's output comes from.
-- Mirrors the other backend's 0008_restart.sql.
ALTER TABLE steps ADD COLUMN reused_from UUID;
