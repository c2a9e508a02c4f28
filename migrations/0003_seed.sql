-- 0003 seed data (reference §2 "Seed data"), one file for both dialects: ids are given
-- as literals (PostgreSQL casts the quoted literals to UUID / NUMERIC, SQLite stores
-- them as the TEXT forms the application uses), timestamps come from column defaults.
--
-- The system user's balances are also written to the ledger as one 'seed' command, so
-- per asset sum(available + held) = sum(ledger deltas) holds from the first moment.

INSERT INTO assets (id, symbol, name, decimals, coingecko_id) VALUES
    ('00000000-0000-0000-0001-000000000001', 'BTC', 'Bitcoin', 8, 'bitcoin'),
    ('00000000-0000-0000-0001-000000000002', 'ETH', 'Ethereum', 18, 'ethereum'),
    ('00000000-0000-0000-0001-000000000003', 'SOL', 'Solana', 9, 'solana'),
    ('00000000-0000-0000-0001-000000000004', 'USDT', 'Tether', 6, 'tether');

INSERT INTO trading_pairs (id, base_asset, quote_asset, symbol) VALUES
    ('00000000-0000-0000-0002-000000000001', 'BTC', 'USDT', 'BTC/USDT'),
    ('00000000-0000-0000-0002-000000000002', 'ETH', 'USDT', 'ETH/USDT'),
    ('00000000-0000-0000-0002-000000000003', 'SOL', 'USDT', 'SOL/USDT');

-- Cannot log in: the empty hash never verifies.
INSERT INTO users (id, email, password_hash, role) VALUES
    ('00000000-0000-0000-0000-000000000001', 'system@excentra.com', '', 'system');

INSERT INTO balances (id, user_id, asset, available, held) VALUES
    ('00000000-0000-0000-0003-000000000001', '00000000-0000-0000-0000-000000000001', 'BTC', '1000000', '0'),
    ('00000000-0000-0000-0003-000000000002', '00000000-0000-0000-0000-000000000001', 'ETH', '1000000', '0'),
    ('00000000-0000-0000-0003-000000000003', '00000000-0000-0000-0000-000000000001', 'SOL', '1000000', '0'),
    ('00000000-0000-0000-0003-000000000004', '00000000-0000-0000-0000-000000000001', 'USDT', '1000000000', '0');

INSERT INTO commands (command_id, kind, user_id, result) VALUES
    ('seed-0001', 'seed', '00000000-0000-0000-0000-000000000001', NULL);

INSERT INTO ledger_entries
    (command_id, seq, user_id, asset, delta_available, delta_held, kind, ref_id)
VALUES
    ('seed-0001', 1, '00000000-0000-0000-0000-000000000001', 'BTC', '1000000', '0', 'seed', NULL),
    ('seed-0001', 2, '00000000-0000-0000-0000-000000000001', 'ETH', '1000000', '0', 'seed', NULL),
    ('seed-0001', 3, '00000000-0000-0000-0000-000000000001', 'SOL', '1000000', '0', 'seed', NULL),
    ('seed-0001', 4, '00000000-0000-0000-0000-000000000001', 'USDT', '1000000000', '0', 'seed', NULL);
