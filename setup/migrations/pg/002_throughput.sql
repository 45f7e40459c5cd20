-- PostgreSQL tracker schema: what a run's concurrency did, the same as
-- setup/migrations/002_throughput.sql (read its comments).
ALTER TABLE wf2jsm.runs ADD COLUMN http_requests bigint NOT NULL DEFAULT 0;
ALTER TABLE wf2jsm.runs ADD COLUMN peak_in_flight bigint NOT NULL DEFAULT 0;
ALTER TABLE wf2jsm.runs ADD COLUMN garbled bigint NOT NULL DEFAULT 0;
ALTER TABLE wf2jsm.runs ADD COLUMN lookups bigint NOT NULL DEFAULT 0;
ALTER TABLE wf2jsm.runs ADD COLUMN lookup_calls bigint NOT NULL DEFAULT 0;
