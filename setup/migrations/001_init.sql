-- Tracker schema, version 1.
-- One row per submission key: the job's memory of what it has delivered.
-- The state machine these columns carry is written down in docs/state-machine.md.
CREATE TABLE submissions (
    key              TEXT PRIMARY KEY,            -- hex SHA-256 of the key columns
    source_id        TEXT NOT NULL,
    source_time_us   INTEGER NOT NULL,            -- time column, microseconds since the epoch (UTC)
    source_time      TEXT NOT NULL,               -- the same, as PostgreSQL printed it
    state            TEXT NOT NULL CHECK (state IN
                       ('pending', 'creating', 'created', 'attaching', 'delivered', 'failed', 'parked')),
    may_exist        INTEGER NOT NULL DEFAULT 0,  -- 1: a create call may have reached JSM; look before creating
    jsm_key          TEXT,
    jsm_issue_id     TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,  -- failed attempts so far
    error_class      TEXT,                        -- temporary | user_fixable | admin_required | internal
    last_error       TEXT,
    content_checksum TEXT,                        -- SHA-256 of the mapped fields at delivery
    created_run      INTEGER,                     -- run that created or adopted the JSM request
    last_run         INTEGER,                     -- last run that worked on the row
    adopted          INTEGER NOT NULL DEFAULT 0,  -- 1: found in JSM after a crash instead of created
    first_seen_at    TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    updated_at_us    INTEGER NOT NULL,
    delivered_at     TEXT
);
-- The cursor is max(source_time_us), and each tick counts the rows of its
-- lookback window: both are range reads on this index.
CREATE INDEX submissions_source_time ON submissions (source_time_us);
CREATE INDEX submissions_open ON submissions (state) WHERE state <> 'delivered';
CREATE INDEX submissions_jsm_key ON submissions (jsm_key);

CREATE TABLE runs (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    command              TEXT NOT NULL,
    started_at           TEXT NOT NULL,
    finished_at          TEXT,
    exit_code            INTEGER,
    seen                 INTEGER NOT NULL DEFAULT 0,
    created              INTEGER NOT NULL DEFAULT 0,
    adopted              INTEGER NOT NULL DEFAULT 0,
    delivered            INTEGER NOT NULL DEFAULT 0,
    failed               INTEGER NOT NULL DEFAULT 0,
    parked               INTEGER NOT NULL DEFAULT 0,
    attachments_uploaded INTEGER NOT NULL DEFAULT 0,
    attachments_failed   INTEGER NOT NULL DEFAULT 0,
    retries              INTEGER NOT NULL DEFAULT 0,
    http_429             INTEGER NOT NULL DEFAULT 0,
    manual_fixes         INTEGER NOT NULL DEFAULT 0,
    duration_ms          INTEGER NOT NULL DEFAULT 0,
    error                TEXT
);

-- Fields JSM refused that the job dropped so the ticket could be created:
-- an operator fixes them on the ticket by hand, then marks them resolved.
CREATE TABLE manual_fixes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    key         TEXT NOT NULL,
    jsm_key     TEXT,
    field_id    TEXT NOT NULL,
    value       TEXT,
    message     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    resolved_at TEXT
);

-- Small named values: the cached request-type field list.
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
