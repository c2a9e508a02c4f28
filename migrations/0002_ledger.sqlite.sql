-- 0002 the balance journal, command idempotency, and on-chain deposits/withdrawals
-- (SQLite). Same tables and columns as 0002_ledger.postgresql.sql; type mapping as in
-- 0001_core.sqlite.sql. Money CHECKs exist on PostgreSQL only (TEXT compares lexically).

-- Every balance movement, append-only. Conservation: per asset,
--   sum(balances.available + balances.held) = sum(delta_available + delta_held).
-- kind: seed, deposit, withdrawal, hold, release, trade, fee, ... (open set).
-- AUTOINCREMENT: ids are never reused, like PostgreSQL's identity.
CREATE TABLE ledger_entries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    command_id      TEXT NOT NULL,
    seq             INTEGER NOT NULL,  -- order of the entry within its command
    user_id         TEXT NOT NULL REFERENCES users (id),
    asset           VARCHAR(10) NOT NULL REFERENCES assets (symbol),
    delta_available TEXT NOT NULL DEFAULT '0',  -- may be negative
    delta_held      TEXT NOT NULL DEFAULT '0',  -- may be negative
    kind            TEXT NOT NULL,
    ref_id          TEXT NULL,  -- the order, trade, withdrawal or chain deposit concerned
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    CONSTRAINT ledger_entries_command_seq_key UNIQUE (command_id, seq)
);
CREATE INDEX idx_ledger_entries_user_asset ON ledger_entries (user_id, asset, id);
CREATE INDEX idx_ledger_entries_ref_id ON ledger_entries (ref_id);

-- Idempotency: a command id is recorded with the reply it produced, in the same
-- transaction as its effects, so a replayed id is answered from here, never re-applied.
CREATE TABLE commands (
    command_id TEXT NOT NULL PRIMARY KEY,
    kind       TEXT NOT NULL,
    user_id    TEXT NULL REFERENCES users (id),
    result     TEXT NULL,  -- JSON
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z')
);

-- One HD-derived address per user and chain; an EVM address serves ETH and its tokens.
CREATE TABLE deposit_addresses (
    id               TEXT NOT NULL PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id),
    chain            TEXT NOT NULL,
    address          TEXT NOT NULL,
    derivation_index BIGINT NOT NULL CHECK (derivation_index >= 0),
    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    CONSTRAINT deposit_addresses_user_chain_key UNIQUE (user_id, chain),
    CONSTRAINT deposit_addresses_address_key UNIQUE (address),
    CONSTRAINT deposit_addresses_derivation_index_key UNIQUE (derivation_index),
    -- One canonical spelling (lowercase hex), so lookups by address never miss.
    CONSTRAINT deposit_addresses_address_lowercase CHECK (address = lower(address))
);

-- A transfer seen on chain to one of our addresses; credited once it has enough
-- confirmations. log_index identifies the token Transfer log (-1: native coin transfer).
CREATE TABLE chain_deposits (
    id            TEXT NOT NULL PRIMARY KEY,
    tx_hash       TEXT NOT NULL,
    log_index     INTEGER NOT NULL,
    block_number  BIGINT NULL,
    address       TEXT NOT NULL REFERENCES deposit_addresses (address),
    user_id       TEXT NOT NULL REFERENCES users (id),
    asset         VARCHAR(10) NOT NULL REFERENCES assets (symbol),
    amount        TEXT NOT NULL,
    confirmations INTEGER NOT NULL DEFAULT 0,
    status        TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'credited', 'orphaned')),
    credited_at   TEXT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    CONSTRAINT chain_deposits_tx_log_key UNIQUE (tx_hash, log_index)
);
CREATE INDEX idx_chain_deposits_status ON chain_deposits (status);
CREATE INDEX idx_chain_deposits_user_id ON chain_deposits (user_id);

-- The user pays amount + fee (both in asset); to_address receives amount.
CREATE TABLE withdrawals (
    id         TEXT NOT NULL PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    asset      VARCHAR(10) NOT NULL REFERENCES assets (symbol),
    amount     TEXT NOT NULL,  -- what to_address receives
    fee        TEXT NOT NULL DEFAULT '0',
    to_address TEXT NOT NULL,
    status     TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'broadcast', 'confirmed', 'failed', 'cancelled')),
    tx_hash    TEXT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z')
);
CREATE INDEX idx_withdrawals_user_created ON withdrawals (user_id, created_at);
CREATE INDEX idx_withdrawals_status ON withdrawals (status);
