-- Strøm schema, PostgreSQL flavour, mirroring migrations/sqlite column for column.
-- Times are BIGINT unix milliseconds (UTC) on both backends, so they order and compare
-- identically; identifiers are UUID; JSON documents are TEXT (see
-- src/store/mod.rs for why not JSONB).

CREATE TABLE jobs (
    id               UUID PRIMARY KEY NOT NULL,
    workspace        TEXT NOT NULL,
    task             TEXT NOT NULL,
    status           TEXT NOT NULL,
    input            TEXT NOT NULL,
    raw_input        TEXT NOT NULL,
    output           TEXT NOT NULL,
    error            TEXT,
    created_at       BIGINT NOT NULL,
    started_at       BIGINT,
    completed_at     BIGINT,
    source_type      TEXT NOT NULL,
    source_id        TEXT,
    parent_job_id    UUID,
    parent_step_name TEXT,
    revision         TEXT NOT NULL,
    depth            BIGINT NOT NULL,
    timeout_secs     BIGINT,
    priority         BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX jobs_created ON jobs (created_at DESC, id);
CREATE INDEX jobs_workspace_task ON jobs (workspace, task, created_at DESC);
CREATE INDEX jobs_status ON jobs (status);
CREATE INDEX jobs_parent ON jobs (parent_job_id) WHERE parent_job_id IS NOT NULL;

CREATE TABLE steps (
    job_id         UUID NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step_name      TEXT NOT NULL,
    position       BIGINT NOT NULL,
    action_name    TEXT NOT NULL,
    action_type    TEXT NOT NULL,
    runner         TEXT NOT NULL,
    status         TEXT NOT NULL,
    depends_on     TEXT NOT NULL,
    input          TEXT,
    output         TEXT NOT NULL,
    error_message  TEXT,
    attempt        BIGINT NOT NULL,
    max_attempts   BIGINT NOT NULL,
    retry_at       BIGINT,
    retry_history  TEXT NOT NULL,
    ready_at       BIGINT,
    started_at     BIGINT,
    completed_at   BIGINT,
    for_each       TEXT,
    loop_source    TEXT,
    loop_index     BIGINT,
    loop_total     BIGINT,
    child_job_id   UUID,
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
    worker_id      UUID PRIMARY KEY NOT NULL,
    name           TEXT NOT NULL,
    version        TEXT NOT NULL,
    status         TEXT NOT NULL,
    capabilities   TEXT NOT NULL,
    tags           TEXT NOT NULL,
    max_concurrent BIGINT NOT NULL,
    last_heartbeat BIGINT NOT NULL,
    registered_at  BIGINT NOT NULL
);

CREATE INDEX workers_heartbeat ON workers (status, last_heartbeat);

CREATE TABLE leases (
    lease_id      UUID PRIMARY KEY NOT NULL,
    job_id        UUID NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step_name     TEXT NOT NULL,
    attempt       BIGINT NOT NULL,
    worker_id     UUID NOT NULL,
    state         TEXT NOT NULL,
    claimed_at    BIGINT NOT NULL,
    started_at    BIGINT,
    expires_at    BIGINT NOT NULL,
    report_digest TEXT
);

-- At most one live lease per step: the fencing rule of API §7.4 as a constraint.
CREATE UNIQUE INDEX leases_live_step ON leases (job_id, step_name)
    WHERE state IN ('active', 'cancelling');
CREATE INDEX leases_live_expiry ON leases (expires_at)
    WHERE state IN ('active', 'cancelling');
CREATE INDEX leases_worker ON leases (worker_id, claimed_at DESC);
CREATE INDEX leases_job ON leases (job_id);
