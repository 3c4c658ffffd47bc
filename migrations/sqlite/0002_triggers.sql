-- Triggers (WF §15): the scheduler's checkpoint per trigger and the lease that lets one
-- `serve` replica fire schedules. Mirrors migrations/postgres/0002_triggers.sql.

-- The last tick of each scheduler trigger that was fired or passed over (`last_tick`), so a
-- restart never fires a tick twice. A row is written with `last_tick` = the time the scheduler
-- first saw the trigger and no run; `last_run_at`/`last_job_id` describe the last firing.
CREATE TABLE trigger_ticks (
    workspace    TEXT NOT NULL,
    trigger_name TEXT NOT NULL,
    last_tick    INTEGER NOT NULL,
    last_run_at  INTEGER,
    last_job_id  BLOB,
    PRIMARY KEY (workspace, trigger_name)
);

-- One row per lease name ('scheduler'): the replica holding it and until when.
CREATE TABLE scheduler_lease (
    name       TEXT PRIMARY KEY NOT NULL,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

-- `concurrency: skip | cancel_previous` looks up a trigger's unfinished jobs.
CREATE INDEX jobs_source_active ON jobs (source_type, source_id)
    WHERE status IN ('pending', 'running');
