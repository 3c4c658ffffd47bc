-- Strøm schema, SQLite flavour. The PostgreSQL tree mirrors this file column for column.
-- Times are INTEGER unix milliseconds (UTC) on both backends, so they order and compare
-- identically; identifiers are 16-byte UUID blobs; JSON documents are TEXT (see
-- src/store/mod.rs for why not JSONB).

CREATE TABLE jobs (
    id               BLOB PRIMARY KEY NOT NULL,
    workspace        TEXT NOT NULL,
    task             TEXT NOT NULL,
    status           TEXT NOT NULL,
    input            TEXT NOT NULL,
    raw_input        TEXT NOT NULL,
    output           TEXT NOT NULL,
    error            TEXT,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    completed_at     INTEGER,
    source_type      TEXT NOT NULL,
    source_id        TEXT,
    parent_job_id    BLOB,
    parent_step_name TEXT,
    revision         TEXT NOT NULL,
    depth            INTEGER NOT NULL,
    timeout_secs     INTEGER,
    priority         INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX jobs_created ON jobs (created_at DESC, id);
CREATE INDEX jobs_workspace_task ON jobs (workspace, task, created_at DESC);
CREATE INDEX jobs_status ON jobs (status);
CREATE INDEX jobs_parent ON jobs (parent_job_id) WHERE parent_job_id IS NOT NULL;

CREATE TABLE steps (
    job_id         BLOB NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step_name      TEXT NOT NULL,
    position       INTEGER NOT NULL,
    action_name    TEXT NOT NULL,
    action_type    TEXT NOT NULL,
    runner         TEXT NOT NULL,
    status         TEXT NOT NULL,
    depends_on     TEXT NOT NULL,
    input          TEXT,
    output         TEXT NOT NULL,
    error_message  TEXT,
    attempt        INTEGER NOT NULL,
    max_attempts   INTEGER NOT NULL,
    retry_at       INTEGER,
    retry_history  TEXT NOT NULL,
    ready_at       INTEGER,
    started_at     INTEGER,
    completed_at   INTEGER,
    for_each       TEXT,
    loop_source    TEXT,
    loop_index     INTEGER,
    loop_total     INTEGER,
    child_job_id   BLOB,
    -- Routing (API §7.5): the worker capability the step needs (NULL: not a worker step) and
    -- the action's tags, a JSON array every one of which the worker must carry.
    capability     TEXT,
    tags           TEXT NOT NULL,
    PRIMARY KEY (job_id, step_name)
);

-- The claim query scans only ready worker steps, oldest first.
CREATE INDEX steps_claimable ON steps (ready_at, job_id)
    WHERE status = 'ready' AND capability IS NOT NULL;

CREATE TABLE workers (
    worker_id      BLOB PRIMARY KEY NOT NULL,
    name           TEXT NOT NULL,
    version        TEXT NOT NULL,
    status         TEXT NOT NULL,
    capabilities   TEXT NOT NULL,
    tags           TEXT NOT NULL,
    max_concurrent INTEGER NOT NULL,
    last_heartbeat INTEGER NOT NULL,
    registered_at  INTEGER NOT NULL
);

CREATE INDEX workers_heartbeat ON workers (status, last_heartbeat);

CREATE TABLE leases (
    lease_id      BLOB PRIMARY KEY NOT NULL,
    job_id        BLOB NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step_name     TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    worker_id     BLOB NOT NULL,
    state         TEXT NOT NULL,
    claimed_at    INTEGER NOT NULL,
    started_at    INTEGER,
    expires_at    INTEGER NOT NULL,
    report_digest TEXT
);

-- At most one live lease per step: the fencing rule of API §7.4 as a constraint.
CREATE UNIQUE INDEX leases_live_step ON leases (job_id, step_name)
    WHERE state IN ('active', 'cancelling');
CREATE INDEX leases_live_expiry ON leases (expires_at)
    WHERE state IN ('active', 'cancelling');
CREATE INDEX leases_worker ON leases (worker_id, claimed_at DESC);
CREATE INDEX leases_job ON leases (job_id);
