-- The idempotency keys of the mutations applied, per caller, with the order each changed: a
-- mutation sent again with the same key (the router retries one whose answer was lost) is answered
-- with that order, not applied twice. The key is recorded in the mutation's own transaction.
-- Keys are kept a day.
CREATE TABLE applied_mutations (
    user_id      BIGINT NOT NULL,
    key          TEXT   NOT NULL,
    order_id     BIGINT NOT NULL,
    time_created TEXT   NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX applied_mutations_time ON applied_mutations (time_created);
