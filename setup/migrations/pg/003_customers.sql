-- PostgreSQL tracker schema: the customer cache (issue 12), the same as
-- setup/migrations/003_customers.sql (read its comments): submitter address
-- -> the JSM customer account its requests are raised on behalf of.
-- Numbered as its SQLite twin.
CREATE TABLE IF NOT EXISTS wf2jsm.customers (
    desk_id     text COLLATE "C" NOT NULL,
    email       text COLLATE "C" NOT NULL,
    account_id  text NOT NULL,
    created_at  text COLLATE "C" NOT NULL,
    PRIMARY KEY (desk_id, email)
);
