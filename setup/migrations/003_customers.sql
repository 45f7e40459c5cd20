-- Tracker schema: the customer cache (issue 12).
-- Submitter address -> the JSM customer account its requests are raised on
-- behalf of. A row exists only once the account is known to be a customer
-- of that service desk, so a cached address costs no HTTP call; another
-- desk (JSM_SERVICE_DESK_ID changed) looks the address up again.
-- Addresses are stored trimmed and lower-cased: JSM matches them ignoring case.
-- IF NOT EXISTS: migrations are numbered by file order, and this file may
-- land before or after its neighbours on a branch.
CREATE TABLE IF NOT EXISTS customers (
    desk_id     TEXT NOT NULL,      -- JSM_SERVICE_DESK_ID it was added to
    email       TEXT NOT NULL,      -- the address, trimmed and lower-cased
    account_id  TEXT NOT NULL,      -- JSM accountId (a string, never a number)
    created_at  TEXT NOT NULL,
    PRIMARY KEY (desk_id, email)
);
