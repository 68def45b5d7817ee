-- An order's lifecycle: OPEN, then CHECKED_OUT (time_closed) or CANCELLED (time_cancelled); both are
-- final. Orders closed before this migration were checked out. "At most one open order per user"
-- now reads the status, so a cancelled order (time_closed stays NULL) is not open.
ALTER TABLE orders ADD COLUMN status TEXT NOT NULL DEFAULT 'OPEN'
    CHECK (status IN ('OPEN', 'CHECKED_OUT', 'CANCELLED'));
UPDATE orders SET status = 'CHECKED_OUT' WHERE time_closed IS NOT NULL;
ALTER TABLE orders ADD COLUMN time_cancelled TEXT;
DROP INDEX orders_one_open_per_user;
CREATE UNIQUE INDEX orders_one_open_per_user ON orders (user_id) WHERE status = 'OPEN';
-- Pages of every order, newest first, for admins.
CREATE INDEX orders_newest ON orders (time_created, id);
