-- 0007 the event log: the durable record of every command (PostgreSQL; same schema as
-- 0007_event_log.sqlite.sql).
--
-- One row per command, appended by the journal in group commits and acknowledged once
-- committed: its sequence number, its id (idempotency), and its body — everything the
-- command changed, as the projections need it (excentra/db/eventlog.py). The relational
-- tables the API reads (orders, trades, balances, ledger_entries, commands, withdrawal and
-- deposit status, assets, pairs) are projections of this log, written after the
-- acknowledgement by the projector (excentra/actors/projector.py), which records how far
-- it got in projection_state in the same transaction as the rows. A crash between the two
-- is repaired at start by projecting the log after that watermark.
--
-- user_id references users so that a command for a user deleted behind the exchange's
-- back is refused by the log itself, before it is acknowledged (the journal isolates it).
CREATE TABLE event_log (
    seq        BIGINT PRIMARY KEY,
    command_id TEXT NOT NULL,
    kind       TEXT NOT NULL,
    user_id    UUID NULL REFERENCES users (id),
    body       BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT event_log_command_id_key UNIQUE (command_id)
);

-- How far each projection of the log has got (one row: 'tables').
CREATE TABLE projection_state (
    name TEXT PRIMARY KEY,
    seq  BIGINT NOT NULL
);
INSERT INTO projection_state (name, seq) VALUES ('tables', 0);

-- A user's idempotency keys are read once per user into memory (excentra/keys.py).
CREATE INDEX idx_commands_user_id ON commands (user_id);
