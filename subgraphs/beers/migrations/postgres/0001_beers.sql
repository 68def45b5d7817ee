-- The catalog. Prices are integer cents (exact). name_key and sku_key hold the lowercased name and sku
-- for case-insensitive search that treats non-ASCII letters alike on every backend.
CREATE TABLE beers (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku           TEXT   NOT NULL CONSTRAINT beers_sku_key UNIQUE,
    name          TEXT   NOT NULL,
    name_key      TEXT   NOT NULL,
    sku_key       TEXT   NOT NULL,
    price_cents   BIGINT NOT NULL CHECK (price_cents BETWEEN 0 AND 99999999),
    image         TEXT,
    time_created  TEXT   NOT NULL,
    time_modified TEXT
);

-- The catalog's order is byte order (COLLATE "C"), the same as SQLite's, whatever the database locale.
CREATE INDEX beers_name_sku ON beers (name COLLATE "C", sku COLLATE "C");
