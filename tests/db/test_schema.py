"""The schema after all migrations: seed data, the conservation seed, constraints."""

from __future__ import annotations

import uuid
from collections import defaultdict
from decimal import Decimal

import pytest

from excentra.db import Database, IntegrityError

SYSTEM_USER = uuid.UUID("00000000-0000-0000-0000-000000000001")

pytestmark = pytest.mark.asyncio


async def test_seed_assets_pairs_and_system_user(migrated: Database) -> None:
    assets = await migrated.fetch_all(
        "SELECT symbol, name, decimals, coingecko_id, is_active FROM assets ORDER BY symbol",
        types={"is_active": bool},
    )
    assert [tuple(a.values()) for a in assets] == [
        ("BTC", "Bitcoin", 8, "bitcoin", True),
        ("ETH", "Ethereum", 18, "ethereum", True),
        ("SOL", "Solana", 9, "solana", True),
        ("USDT", "Tether", 6, "tether", True),
    ]
    pairs = await migrated.fetch_all(
        "SELECT symbol, base_asset, quote_asset, is_active, maker_fee_rate, price_step "
        "FROM trading_pairs ORDER BY symbol",
        types={"is_active": bool, "maker_fee_rate": Decimal, "price_step": Decimal},
    )
    assert [(p["symbol"], p["base_asset"], p["quote_asset"]) for p in pairs] == [
        ("BTC/USDT", "BTC", "USDT"),
        ("ETH/USDT", "ETH", "USDT"),
        ("SOL/USDT", "SOL", "USDT"),
    ]
    assert all(p["is_active"] and p["maker_fee_rate"] == 0 for p in pairs)
    assert all(p["price_step"] is None for p in pairs)
    user = await migrated.fetch_one(
        "SELECT id, email, password_hash, role, is_suspended FROM users WHERE id = :id",
        {"id": SYSTEM_USER},
        types={"id": uuid.UUID, "is_suspended": bool},
    )
    assert user == {
        "id": SYSTEM_USER,
        "email": "system@excentra.com",
        "password_hash": "",
        "role": "system",
        "is_suspended": False,
    }


async def test_seed_balances_are_exact(migrated: Database) -> None:
    rows = await migrated.fetch_all(
        "SELECT user_id, asset, available, held FROM balances ORDER BY asset",
        types={"user_id": uuid.UUID, "available": Decimal, "held": Decimal},
    )
    assert {r["user_id"] for r in rows} == {SYSTEM_USER}
    assert {r["asset"]: (r["available"], r["held"]) for r in rows} == {
        "BTC": (Decimal(1000000), Decimal(0)),
        "ETH": (Decimal(1000000), Decimal(0)),
        "SOL": (Decimal(1000000), Decimal(0)),
        "USDT": (Decimal(1000000000), Decimal(0)),
    }
    usdt = next(r for r in rows if r["asset"] == "USDT")
    assert usdt["available"] == Decimal("1000000000")
    assert str(usdt["available"]) == "1000000000"


async def test_conservation_holds_from_the_seed(migrated: Database) -> None:
    # Summed in Python: SQLite would SUM() TEXT as floating point.
    balances = await migrated.fetch_all(
        "SELECT asset, available, held FROM balances",
        types={"available": Decimal, "held": Decimal},
    )
    ledger = await migrated.fetch_all(
        "SELECT asset, delta_available, delta_held, kind, command_id FROM ledger_entries",
        types={"delta_available": Decimal, "delta_held": Decimal},
    )
    held_total: defaultdict[str, Decimal] = defaultdict(Decimal)
    journal_total: defaultdict[str, Decimal] = defaultdict(Decimal)
    for row in balances:
        held_total[row["asset"]] += row["available"] + row["held"]
    for row in ledger:
        journal_total[row["asset"]] += row["delta_available"] + row["delta_held"]
    assert held_total == journal_total
    assert set(held_total) == {"BTC", "ETH", "SOL", "USDT"}
    assert {(r["kind"], r["command_id"]) for r in ledger} == {("seed", "seed-0001")}
    assert (
        await migrated.fetch_val("SELECT kind FROM commands WHERE command_id = 'seed-0001'")
        == "seed"
    )


async def test_duplicate_command_id_is_rejected(migrated: Database) -> None:
    insert = "INSERT INTO commands (command_id, kind, result) VALUES (:id, 'place', '{}')"
    await migrated.execute(insert, {"id": "cmd-1"})
    with pytest.raises(IntegrityError):
        await migrated.execute(insert, {"id": "cmd-1"})


async def test_duplicate_ledger_command_seq_is_rejected(migrated: Database) -> None:
    insert = (
        "INSERT INTO ledger_entries (command_id, seq, user_id, asset, delta_available, kind) "
        "VALUES ('cmd-1', :seq, :user_id, 'BTC', :delta, 'deposit')"
    )
    values = {"user_id": SYSTEM_USER, "delta": Decimal("-1.5")}
    await migrated.execute(insert, {**values, "seq": 1})
    await migrated.execute(insert, {**values, "seq": 2})
    with pytest.raises(IntegrityError):
        await migrated.execute(insert, {**values, "seq": 1})


async def _order(db: Database, client_order_id: str | None) -> None:
    await db.execute(
        "INSERT INTO orders (id, user_id, pair_id, client_order_id, side, order_type, price, "
        "quantity, remaining_quantity, reserved, seq) VALUES (:id, :user_id, "
        "(SELECT id FROM trading_pairs WHERE symbol = 'BTC/USDT'), :client_order_id, "
        "'buy', 'limit', :price, :quantity, :quantity, :reserved, :seq)",
        {
            "id": uuid.uuid4(),
            "user_id": SYSTEM_USER,
            "client_order_id": client_order_id,
            "price": Decimal("65000.50"),
            "quantity": Decimal("0.001"),
            "reserved": Decimal("65.0005"),
            "seq": 1,
        },
    )


async def test_client_order_id_is_unique_per_user(migrated: Database) -> None:
    await _order(migrated, None)
    await _order(migrated, None)  # NULLs never collide
    await _order(migrated, "mine-1")
    with pytest.raises(IntegrityError):
        await _order(migrated, "mine-1")
    row = await migrated.fetch_one(
        "SELECT time_in_force, post_only, status, filled_quantity FROM orders "
        "WHERE client_order_id = 'mine-1'",
        types={"post_only": bool, "filled_quantity": Decimal},
    )
    assert row == {
        "time_in_force": "GTC",
        "post_only": False,
        "status": "open",
        "filled_quantity": Decimal(0),
    }


@pytest.mark.parametrize(
    ("sql", "values"),
    [
        (
            "INSERT INTO users (id, email, password_hash) VALUES (:id, 'Upper@Example.com', '')",
            {"id": uuid.uuid4()},
        ),
        (
            "INSERT INTO users (id, email, password_hash, role) VALUES (:id, 'a@b.c', '', 'root')",
            {"id": uuid.uuid4()},
        ),
        (
            "INSERT INTO users (id, email, password_hash) VALUES (:id, 'system@excentra.com', '')",
            {"id": uuid.uuid4()},
        ),
        (
            "INSERT INTO trading_pairs (id, base_asset, quote_asset, symbol) "
            "VALUES (:id, 'BTC', 'XYZ', 'BTC/XYZ')",
            {"id": uuid.uuid4()},
        ),
        (
            "INSERT INTO trading_pairs (id, base_asset, quote_asset, symbol) "
            "VALUES (:id, 'ETH', 'BTC', 'ETHBTC')",
            {"id": uuid.uuid4()},
        ),
        (
            "INSERT INTO withdrawals (id, user_id, asset, amount, to_address, status) "
            "VALUES (:id, :user_id, 'ETH', '1', '0xabc', 'lost')",
            {"id": uuid.uuid4(), "user_id": SYSTEM_USER},
        ),
    ],
    ids=["email-case", "role", "email-dup", "pair-asset-fk", "pair-symbol", "withdrawal-status"],
)
async def test_constraints_on_both_dialects(
    migrated: Database, sql: str, values: dict[str, object]
) -> None:
    with pytest.raises(IntegrityError):
        await migrated.execute(sql, values)


async def test_negative_balance_is_rejected_on_postgresql(migrated: Database) -> None:
    statement = "UPDATE balances SET available = :v WHERE asset = 'BTC'"
    if migrated.dialect == "sqlite":
        # TEXT columns cannot carry a numeric CHECK; the ledger enforces it there.
        await migrated.execute(statement, {"v": Decimal(-1)})
        return
    with pytest.raises(IntegrityError):
        await migrated.execute(statement, {"v": Decimal(-1)})


async def test_deposit_address_uniqueness(migrated: Database) -> None:
    insert = (
        "INSERT INTO deposit_addresses (id, user_id, chain, address, derivation_index) "
        "VALUES (:id, :user_id, :chain, :address, :index)"
    )
    base = {"user_id": SYSTEM_USER, "chain": "sepolia", "address": "0xaa", "index": 0}
    await migrated.execute(insert, {**base, "id": uuid.uuid4()})
    for clash in ({"chain": "holesky", "index": 1}, {"chain": "holesky", "address": "0xbb"}):
        with pytest.raises(IntegrityError):
            await migrated.execute(insert, {**base, **clash, "id": uuid.uuid4()})
    with pytest.raises(IntegrityError):  # checksummed (mixed-case) spelling
        await migrated.execute(
            insert, {**base, "chain": "x", "address": "0xAB", "index": 5, "id": uuid.uuid4()}
        )


async def test_chain_deposit_is_unique_per_log(migrated: Database) -> None:
    await migrated.execute(
        "INSERT INTO deposit_addresses (id, user_id, chain, address, derivation_index) "
        "VALUES (:id, :user_id, 'sepolia', '0xaa', 0)",
        {"id": uuid.uuid4(), "user_id": SYSTEM_USER},
    )
    insert = (
        "INSERT INTO chain_deposits (id, tx_hash, log_index, address, user_id, asset, amount) "
        "VALUES (:id, '0xfeed', :log_index, '0xaa', :user_id, 'USDT', :amount)"
    )
    values = {"user_id": SYSTEM_USER, "amount": Decimal("12.345678")}
    await migrated.execute(insert, {**values, "id": uuid.uuid4(), "log_index": 0})
    await migrated.execute(insert, {**values, "id": uuid.uuid4(), "log_index": 1})
    with pytest.raises(IntegrityError):
        await migrated.execute(insert, {**values, "id": uuid.uuid4(), "log_index": 0})
