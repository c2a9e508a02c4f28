-- 0006 on-chain deposits and withdrawals (PostgreSQL; 0006_chain.sqlite.sql is the same
-- schema for SQLite). See excentra/chain/ for who writes what.

-- Withdrawals on chain: pending_approval (above the admin limit) → queued → broadcast →
-- confirmed | failed; rejected by an admin. 'pending'/'cancelled' stay for the simulated
-- withdrawals of assets without a chain. chain: NULL for those. nonce/raw_tx: the hot
-- wallet's nonce and the signed transaction last broadcast (kept so a restart re-sends it
-- rather than signing another with a new nonce). reason: why it failed or was rejected.
ALTER TABLE withdrawals DROP CONSTRAINT withdrawals_status_check;
ALTER TABLE withdrawals ADD CONSTRAINT withdrawals_status_check CHECK (status IN (
    'pending', 'pending_approval', 'queued', 'broadcast', 'confirmed', 'failed',
    'cancelled', 'rejected'));
ALTER TABLE withdrawals ADD COLUMN chain TEXT NULL;
ALTER TABLE withdrawals ADD COLUMN nonce BIGINT NULL;
ALTER TABLE withdrawals ADD COLUMN raw_tx TEXT NULL;
ALTER TABLE withdrawals ADD COLUMN reason TEXT NULL;
CREATE UNIQUE INDEX withdrawals_chain_nonce_key ON withdrawals (chain, nonce);

-- Deposits: ignored = below the asset's minimum (dust, never credited); orphaned = its
-- block left the canonical chain before it was credited; reversed = its block left the
-- chain AFTER it was credited (the credit stands in the ledger; an admin must act).
ALTER TABLE chain_deposits DROP CONSTRAINT chain_deposits_status_check;
ALTER TABLE chain_deposits ADD CONSTRAINT chain_deposits_status_check CHECK (status IN (
    'pending', 'credited', 'orphaned', 'ignored', 'reversed'));
ALTER TABLE chain_deposits ADD COLUMN chain TEXT NOT NULL DEFAULT 'ethereum';
ALTER TABLE chain_deposits ADD COLUMN block_hash TEXT NULL;

-- The blocks the watcher processed, the newest few per chain: where it resumes, and what
-- it compares with the node to notice a reorganisation.
CREATE TABLE chain_blocks (
    chain  TEXT NOT NULL,
    number BIGINT NOT NULL,
    hash   TEXT NOT NULL,
    PRIMARY KEY (chain, number)
);

-- Transactions the exchange sends that are not withdrawals: sweeps of deposit addresses
-- into the hot wallet and the gas the hot wallet sends a deposit address to sweep tokens.
CREATE TABLE chain_transactions (
    id           UUID PRIMARY KEY,
    chain        TEXT NOT NULL,
    purpose      TEXT NOT NULL CHECK (purpose IN ('sweep', 'gas')),
    from_address TEXT NOT NULL,
    to_address   TEXT NOT NULL,
    asset        VARCHAR(10) NOT NULL REFERENCES assets (symbol),
    amount       NUMERIC NOT NULL CHECK (amount > 0),
    nonce        BIGINT NOT NULL,
    tx_hash      TEXT NOT NULL,
    raw_tx       TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'broadcast'
        CHECK (status IN ('broadcast', 'confirmed', 'failed')),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT chain_transactions_sender_nonce_key UNIQUE (chain, from_address, nonce)
);
CREATE INDEX idx_chain_transactions_status ON chain_transactions (status);
