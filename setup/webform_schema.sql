-- A sample webform table with seed data, for `make demo` and the tests.
-- The (submitted_date, id) index is what the job's keyset cursor and its
-- lookback window scan; without it every tick would read the whole table.
CREATE TABLE IF NOT EXISTS webform_submissions (
    id             bigserial PRIMARY KEY,
    submitted_date timestamptz NOT NULL DEFAULT now(),
    subject        text NOT NULL,
    message        text,
    category       text,
    impact         text NOT NULL DEFAULT 'Medium',
    employees      integer,
    due_date       date,
    contact_email  text,
    products       text
);
CREATE INDEX IF NOT EXISTS webform_submissions_cursor
    ON webform_submissions (submitted_date, id);
