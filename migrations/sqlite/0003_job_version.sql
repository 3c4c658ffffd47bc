-- Every committed change of a job (its row or any of its step rows) increments `version` under
-- the job's lock, so a server can tell whether the copy of a job it holds is current
-- (src/store/cache.rs) and replicas never act on stale state.
ALTER TABLE jobs ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
