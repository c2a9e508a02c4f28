-- The account trading fees are credited to (excentra/ledger/core.py FEE_ACCOUNT).
-- A system user: it cannot log in (empty password hash) and never trades.
INSERT INTO users (id, email, password_hash, role)
VALUES ('00000000-0000-0000-0000-000000000002', 'fees@excentra.com', '', 'system');
