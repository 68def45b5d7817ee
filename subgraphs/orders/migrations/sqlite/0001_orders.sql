-- Orders and their lines. An order is open while time_closed is NULL; the partial unique index makes
-- "at most one open order per user" a rule of the database, safe under concurrent requests.
-- user_id names a user of the users subgraph (another database: no foreign key possible).
CREATE TABLE orders (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL,
    time_created  TEXT    NOT NULL,
    time_modified TEXT,
    time_closed   TEXT
);

CREATE UNIQUE INDEX orders_one_open_per_user ON orders (user_id) WHERE time_closed IS NULL;
CREATE INDEX orders_user_id ON orders (user_id, time_created);

-- sku names a beer of the beers subgraph; a line outlives the beer. Prices are integer cents.
CREATE TABLE order_items (
    order_id         INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    sku              TEXT    NOT NULL,
    quantity         INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    unit_price_cents INTEGER NOT NULL CHECK (unit_price_cents >= 0),
    time_added       TEXT    NOT NULL,
    PRIMARY KEY (order_id, sku)
);
