-- What an applied mutation was and what it answered: a key sent again with another request is
-- refused (fingerprint: the SHA-256 of the request the key was first used for), and a repeat of
-- the same request is answered with the order as the first answer had it (answer: the order and
-- its lines as JSON, read in the mutation's transaction). Rows from before these columns have
-- neither: they are answered with the order as it is.
ALTER TABLE applied_mutations ADD COLUMN fingerprint TEXT;
ALTER TABLE applied_mutations ADD COLUMN answer TEXT;

-- Each committed change to an order, with the order as the change left it (JSON), for the
-- subscriptions of every replica: the notification names the row, each replica's listener reads
-- it once. Rows are kept ten minutes.
CREATE TABLE order_events (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    snapshot     TEXT NOT NULL,
    time_created TEXT NOT NULL
);
CREATE INDEX order_events_time ON order_events (time_created);
