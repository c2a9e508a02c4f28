-- 0006 on-chain deposits and withdrawals (SQLite). Same schema as
-- 0006_chain.postgresql.sql (read the comments there). SQLite cannot change a CHECK
-- constraint, so withdrawals and chain_deposits are rebuilt (no table references them).

CREATE TABLE withdrawals_0006 (
    id         TEXT NOT NULL PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    asset      VARCHAR(10) NOT NULL REFERENCES assets (symbol),
    amount     TEXT NOT NULL,
    fee        TEXT NOT NULL DEFAULT '0',
    to_address TEXT NOT NULL,
    status     TEXT NOT NULL DEFAULT 'pending' CHECK (status IN (
        'pending', 'pending_approval', 'queued', 'broadcast', 'confirmed', 'failed',
        'cancelled', 'rejected')),
    tx_hash    TEXT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    chain      TEXT NULL,
    nonce      BIGINT NULL,
    raw_tx     TEXT NULL,
    reason     TEXT NULL
);
INSERT INTO withdrawals_0006 (id, user_id, asset, amount, fee, to_address, status, tx_hash,
                              created_at, updated_at)
SELECT id, user_id, asset, amount, fee, to_address, status, tx_hash, created_at, updated_at
FROM withdrawals;
DROP TABLE withdrawals;
ALTER TABLE withdrawals_0006 RENAME TO withdrawals;
CREATE INDEX idx_withdrawals_user_created ON withdrawals (user_id, created_at);
CREATE INDEX idx_withdrawals_status ON withdrawals (status);
CREATE UNIQUE INDEX withdrawals_chain_nonce_key ON withdrawals (chain, nonce);

CREATE TABLE chain_deposits_0006 (
    id            TEXT NOT NULL PRIMARY KEY,
    tx_hash       TEXT NOT NULL,
    log_index     INTEGER NOT NULL,
    block_number  BIGINT NULL,
    address       TEXT NOT NULL REFERENCES deposit_addresses (address),
    user_id       TEXT NOT NULL REFERENCES users (id),
    asset         VARCHAR(10) NOT NULL REFERENCES assets (symbol),
    amount        TEXT NOT NULL,
    confirmations INTEGER NOT NULL DEFAULT 0,
    status        TEXT NOT NULL DEFAULT 'pending' CHECK (status IN (
        'pending', 'credited', 'orphaned', 'ignored', 'reversed')),
    credited_at   TEXT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    chain         TEXT NOT NULL DEFAULT 'ethereum',
    block_hash    TEXT NULL,
    CONSTRAINT chain_deposits_tx_log_key UNIQUE (tx_hash, log_index)
);
INSERT INTO chain_deposits_0006 (id, tx_hash, log_index, block_number, address, user_id,
                                 asset, amount, confirmations, status, credited_at,
                                 created_at, updated_at)
SELECT id, tx_hash, log_index, block_number, address, user_id, asset, amount, confirmations,
       status, credited_at, created_at, updated_at
FROM chain_deposits;
DROP TABLE chain_deposits;
ALTER TABLE chain_deposits_0006 RENAME TO chain_deposits;
CREATE INDEX idx_chain_deposits_status ON chain_deposits (status);
CREATE INDEX idx_chain_deposits_user_id ON chain_deposits (user_id);

CREATE TABLE chain_blocks (
    chain  TEXT NOT NULL,
    number BIGINT NOT NULL,
    hash   TEXT NOT NULL,
    PRIMARY KEY (chain, number)
);

CREATE TABLE chain_transactions (
    id           TEXT NOT NULL PRIMARY KEY,
    chain        TEXT NOT NULL,
    purpose      TEXT NOT NULL CHECK (purpose IN ('sweep', 'gas')),
    from_address TEXT NOT NULL,
    to_address   TEXT NOT NULL,
    asset        VARCHAR(10) NOT NULL REFERENCES assets (symbol),
    amount       TEXT NOT NULL,
    nonce        BIGINT NOT NULL,
    tx_hash      TEXT NOT NULL,
    raw_tx       TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'broadcast'
        CHECK (status IN ('broadcast', 'confirmed', 'failed')),
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    updated_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    CONSTRAINT chain_transactions_sender_nonce_key UNIQUE (chain, from_address, nonce)
);
CREATE INDEX idx_chain_transactions_status ON chain_transactions (status);
