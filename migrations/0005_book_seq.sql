-- 0005 one file for both dialects: each pair's order-book sequence number, so that `seq`
-- (WebSocket `order_book` events, the REST order book, the engine's `LevelChanged`) never
-- goes back across a restart or a rebuild of the core. The seq of the last committed
-- command that changed the pair's book; the journal writes it with the command's rows
-- (excentra/db/journal.py), and a rebuilt book and the market-data mirrors continue from it.
ALTER TABLE trading_pairs ADD COLUMN book_seq BIGINT NOT NULL DEFAULT 0;
