-- 002_throughput.sql: what a run's concurrency did, for `status`, the run
-- summary and the metrics file (issue 11), and what its answers and its
-- pre-create searches cost (issue 10).
ALTER TABLE runs ADD COLUMN http_requests INTEGER NOT NULL DEFAULT 0;   -- every try of every call
ALTER TABLE runs ADD COLUMN peak_in_flight INTEGER NOT NULL DEFAULT 0;  -- most requests in flight at once
ALTER TABLE runs ADD COLUMN garbled INTEGER NOT NULL DEFAULT 0;         -- answers that could not be used
ALTER TABLE runs ADD COLUMN lookups INTEGER NOT NULL DEFAULT 0;         -- batches that asked JSM before creating
ALTER TABLE runs ADD COLUMN lookup_calls INTEGER NOT NULL DEFAULT 0;    -- HTTP calls those searches made
