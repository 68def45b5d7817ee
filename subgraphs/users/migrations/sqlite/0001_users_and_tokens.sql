-- Accounts and their sign-in tokens. Unique keys hold the lowercased username and email, so
-- uniqueness is case-insensitive and enforced by the database itself.
CREATE TABLE users (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    username        TEXT    NOT NULL,
    username_key    TEXT    NOT NULL CONSTRAINT users_username_key UNIQUE,
    email           TEXT    NOT NULL,
    email_key       TEXT    NOT NULL CONSTRAINT users_email_key UNIQUE,
    password_hash   TEXT    NOT NULL,
    first_name      TEXT,
    last_name       TEXT,
    is_admin        INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    time_registered TEXT    NOT NULL,
    time_modified   TEXT
);

-- Only a keyed hash of each token is stored. Deleting a row revokes the token.
CREATE TABLE tokens (
    token_hash   TEXT    PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    time_created TEXT    NOT NULL,
    time_expires TEXT    NOT NULL
);

CREATE INDEX tokens_user_id ON tokens (user_id);
