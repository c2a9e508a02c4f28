"""PostgreSQL's group commit in one round trip.

A batch becomes a single statement: one data-modifying CTE per table, each fed by
``unnest`` over column arrays. One statement is one transaction on its own, so the batch
costs one round trip instead of a ``BEGIN``, an ``executemany`` per table and a
``COMMIT`` (measured: the journal thread spent most of its time waiting on ~8 round trips
per batch, each also waiting for the GIL when it came back).

All CTEs of a statement see the same snapshot, so a row inserted by the batch cannot be
updated by it: changes to orders and withdrawals that this same batch inserts are merged
into their insert rows here, and several changes of one row keep the last (each change
carries the row's absolute new values); likewise a pair's ``book_seq``, an ``UPDATE``
for a pair that exists, a value in the insert row of a pair the batch adds. Foreign keys
are checked at the end of the statement, so trades may reference orders inserted beside
them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    array: str
    """The element type of the parameter array (decimals travel as text)."""
    cast: str = ""
    """A cast applied when selecting, e.g. ``::numeric``."""


def _cols(spec: str) -> tuple[Column, ...]:
    """``"id uuid, price text::numeric, ..."`` → columns."""
    out = []
    for part in spec.split(","):
        name, kind = part.split()
        array, _, cast = kind.partition("::")
        out.append(Column(name, array, f"::{cast}" if cast else ""))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    table: str
    columns: tuple[Column, ...]
    tail: str = ""
    """What follows the ``SELECT`` (e.g. an ``ON CONFLICT`` clause)."""


INSERTS = (
    Table("assets", "assets", _cols(
        "id uuid, symbol text, name text, decimals int4::smallint, is_active bool, "
        "coingecko_id text, created_at timestamptz")),
    Table("pairs", "trading_pairs", _cols(
        "id uuid, base_asset text, quote_asset text, symbol text, is_active bool, "
        "price_step text::numeric, quantity_step text::numeric, "
        "maker_fee_rate text::numeric, taker_fee_rate text::numeric, "
        "created_at timestamptz, book_seq int8")),
    Table("commands", "commands", _cols(
        "command_id text, kind text, user_id uuid, result text, created_at timestamptz")),
    Table("orders", "orders", _cols(
        "id uuid, user_id uuid, pair_id uuid, client_order_id text, side text, "
        "order_type text, time_in_force text, post_only bool, price text::numeric, "
        "quantity text::numeric, remaining_quantity text::numeric, "
        "filled_quantity text::numeric, reserved text::numeric, status text, seq int8, "
        "created_at timestamptz, updated_at timestamptz")),
    Table("withdrawals", "withdrawals", _cols(
        "id uuid, user_id uuid, asset text, amount text::numeric, fee text::numeric, "
        "to_address text, status text, chain text, tx_hash text, nonce int8, raw_tx text, "
        "reason text, created_at timestamptz, updated_at timestamptz")),
    Table("trades", "trades", _cols(
        "id uuid, pair_id uuid, buy_order_id uuid, sell_order_id uuid, buyer_user_id uuid, "
        "seller_user_id uuid, price text::numeric, quantity text::numeric, "
        "quote_amount text::numeric, taker_side text, maker_fee text::numeric, "
        "taker_fee text::numeric, seq int8, created_at timestamptz")),
    Table("entries", "ledger_entries", _cols(
        "command_id text, seq int4, user_id uuid, asset text, "
        "delta_available text::numeric, delta_held text::numeric, kind text, ref_id uuid, "
        "created_at timestamptz")),
    Table("balances", "balances", _cols(
        "id uuid, user_id uuid, asset text, available text::numeric, held text::numeric, "
        "updated_at timestamptz"),
          " ON CONFLICT (user_id, asset) DO UPDATE SET available = excluded.available, "
          "held = excluded.held, updated_at = excluded.updated_at"),
)
ORDER_CHANGES = _cols("id uuid, remaining_quantity text::numeric, "
                      "filled_quantity text::numeric, reserved text::numeric, status text, "
                      "updated_at timestamptz")
WITHDRAWAL_CHANGES = _cols("id uuid, status text, tx_hash text, nonce int8, raw_tx text, "
                           "reason text, updated_at timestamptz")
_WITHDRAWAL_KEPT = ("tx_hash", "nonce", "raw_tx", "reason")
"""A withdrawal change's ``None`` in these keeps the stored value."""
DEPOSIT_CHANGES = _cols("id uuid, status text, confirmations int4, credited_at timestamptz, "
                        "updated_at timestamptz")
BOOK_SEQS = _cols("id uuid, book_seq int8")
PROJECTION = _cols("name text, seq int8")


def statement(rows: dict[str, list[Row]]) -> tuple[str, list[list[Any]]]:
    """The batch's single statement and its parameter arrays (``rows`` as the journal
    collects them: ``orders`` rows without ``updated_at``, ``withdrawals`` without
    ``tx_hash``/``updated_at``, ``pairs`` without ``is_active``/``book_seq``, at most one
    ``book_seqs`` row per pair)."""
    orders = {r["id"]: {**r, "updated_at": r["created_at"]} for r in rows["orders"]}
    order_changes = _merge(orders, rows["order_changes"], ("remaining_quantity",
                           "filled_quantity", "reserved", "status", "updated_at"))
    withdrawals = {r["id"]: {**r, **dict.fromkeys(_WITHDRAWAL_KEPT),
                             "updated_at": r["created_at"]} for r in rows["withdrawals"]}
    withdrawal_changes = _merge(withdrawals, rows["withdrawal_changes"],
                                ("status", *_WITHDRAWAL_KEPT, "updated_at"), _WITHDRAWAL_KEPT)
    deposit_changes = _merge({}, rows["deposit_changes"], ("status", "confirmations",
                             "credited_at", "updated_at"), ("credited_at",))
    pairs = {r["id"]: {**r, "is_active": True, "book_seq": 0} for r in rows["pairs"]}
    book_seqs = _merge(pairs, rows["book_seqs"], ("book_seq",))
    tables = {**rows, "orders": list(orders.values()),
              "withdrawals": list(withdrawals.values()),
              "assets": [{**r, "is_active": True} for r in rows["assets"]],
              "pairs": list(pairs.values())}
    ctes: list[str] = []
    args: list[list[Any]] = []
    for t in INSERTS:
        if tables[t.name]:
            source = _unnest(t.columns, tables[t.name], args)
            names = ", ".join(c.name for c in t.columns)
            # identifiers come from the constant table specs; values are all parameters
            ctes.append(f"{t.name} AS (INSERT INTO {t.table} ({names}) "  # noqa: S608
                        f"SELECT {_selected(t.columns)} FROM {source}{t.tail})")
    if order_changes:
        ctes.append(_update("order_changes", "orders", ORDER_CHANGES, order_changes, args))
    if withdrawal_changes:
        ctes.append(_update("withdrawal_changes", "withdrawals", WITHDRAWAL_CHANGES,
                            withdrawal_changes, args, keep_old=_WITHDRAWAL_KEPT))
    if deposit_changes:
        ctes.append(_update("deposit_changes", "chain_deposits", DEPOSIT_CHANGES,
                            deposit_changes, args, keep_old=("credited_at",)))
    if book_seqs:
        ctes.append(_update("book_seqs", "trading_pairs", BOOK_SEQS, book_seqs, args))
    if rows.get("projection"):
        ctes.append(_update("projection", "projection_state", PROJECTION,
                            rows["projection"], args, key="name"))
    return "WITH " + ",\n".join(ctes) + "\nSELECT 1", args


def _merge(inserted: dict[Any, Row], changes: Iterable[Row],
           fields: Sequence[str], kept: Sequence[str] = ()) -> list[Row]:
    """Fold changes of rows inserted by this batch into their insert rows; of several
    changes to one existing row keep the last (a ``None`` in a ``kept`` field keeps the
    earlier value)."""
    last: dict[Any, Row] = {}
    for change in changes:
        target = inserted.get(change["id"])
        if target is None:
            target = last.setdefault(change["id"], {"id": change["id"],
                                                    **dict.fromkeys(kept)})
        for name in fields:
            if change.get(name) is not None or name not in kept:
                target[name] = change[name]
    return list(last.values())


def _value(value: Any) -> Any:
    return format(value, "f") if isinstance(value, Decimal) else value


def _unnest(columns: Sequence[Column], rows: list[Row], args: list[list[Any]]) -> str:
    params = []
    for c in columns:
        args.append([_value(r[c.name]) for r in rows])
        params.append(f"${len(args)}::{c.array}[]")
    names = ", ".join(c.name for c in columns)
    return f"unnest({', '.join(params)}) AS u({names})"


def _selected(columns: Sequence[Column]) -> str:
    return ", ".join(f"u.{c.name}{c.cast}" for c in columns)


def _update(name: str, table: str, columns: Sequence[Column], rows: list[Row],
            args: list[list[Any]], keep_old: Sequence[str] = (), key: str = "id") -> str:
    sets = ", ".join(
        f"{c.name} = COALESCE(u.{c.name}{c.cast}, t.{c.name})" if c.name in keep_old
        else f"{c.name} = u.{c.name}{c.cast}" for c in columns if c.name != key)
    return (f"{name} AS (UPDATE {table} t SET {sets} "  # noqa: S608 - constant identifiers
            f"FROM {_unnest(columns, rows, args)} "
            f"WHERE t.{key} = u.{key})")
