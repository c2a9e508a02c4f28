-- 0007 the event log (SQLite). Same schema as 0007_event_log.postgresql.sql (read the
-- comments there).
CREATE TABLE event_log (
    seq        BIGINT NOT NULL PRIMARY KEY,
    command_id TEXT NOT NULL,
    kind       TEXT NOT NULL,
    user_id    TEXT NULL REFERENCES users (id),
    body       BLOB NOT NULL,
    created_at TEXT NOT NULL,
    CONSTRAINT event_log_command_id_key UNIQUE (command_id)
);

CREATE TABLE projection_state (
    name TEXT NOT NULL PRIMARY KEY,
    seq  BIGINT NOT NULL
);
INSERT INTO projection_state (name, seq) VALUES ('tables', 0);

CREATE INDEX idx_commands_user_id ON commands (user_id);
