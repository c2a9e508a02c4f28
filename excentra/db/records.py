"""What the journal writes: one ``Writes`` per command, rows ready for SQL.

Amounts are exact ``Decimal``s in the asset's units; balance movements stay in integer
minor units (the journal turns them into absolute balances, see ``journal.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID


@dataclass(frozen=True, slots=True)
class OrderRow:
    id: UUID
    user_id: UUID
    pair_id: UUID
    client_order_id: str | None
    side: str
    order_type: str
    time_in_force: str
    post_only: bool
    price: Decimal | None
    quantity: Decimal
    """Base quantity; a market buy's quote budget (the original's convention)."""
    remaining_quantity: Decimal
    filled_quantity: Decimal
    reserved: Decimal
    status: str
    seq: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OrderChange:
    id: UUID
    remaining_quantity: Decimal
    filled_quantity: Decimal
    reserved: Decimal
    status: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TradeRow:
    id: UUID
    pair_id: UUID
    buy_order_id: UUID
    sell_order_id: UUID
    buyer_user_id: UUID
    seller_user_id: UUID
    price: Decimal
    quantity: Decimal
    quote_amount: Decimal
    taker_side: str
    maker_fee: Decimal
    taker_fee: Decimal
    seq: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MovementRow:
    """One balance movement in minor units (a ledger entry once written)."""

    user_id: UUID
    asset: str
    available: int
    held: int
    kind: str
    ref_id: UUID | None


@dataclass(frozen=True, slots=True)
class WithdrawalRow:
    id: UUID
    user_id: UUID
    asset: str
    amount: Decimal
    fee: Decimal
    to_address: str
    status: str
    created_at: datetime
    chain: str | None = None
    """The chain it is paid out on; ``None``: a simulated (off-chain) withdrawal."""


@dataclass(frozen=True, slots=True)
class WithdrawalChange:
    """A withdrawal's new status; ``None`` fields keep their stored value."""

    id: UUID
    status: str
    tx_hash: str | None
    updated_at: datetime
    nonce: int | None = None
    raw_tx: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class DepositChange:
    """A chain deposit's new status (credited, reversed) in the command that decides it."""

    id: UUID
    status: str
    confirmations: int
    credited_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AssetRow:
    id: UUID
    symbol: str
    name: str
    decimals: int
    coingecko_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PairRow:
    id: UUID
    base_asset: str
    quote_asset: str
    symbol: str
    price_step: Decimal | None
    quantity_step: Decimal | None
    maker_fee_rate: Decimal
    taker_fee_rate: Decimal
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Writes:
    """Everything one command changes, written atomically with its command record."""

    command_id: str
    kind: str
    user_id: UUID | None
    result: str
    """The reply, as JSON, kept so a retried command id gets the same answer."""
    at: datetime
    orders: tuple[OrderRow, ...] = ()
    order_changes: tuple[OrderChange, ...] = ()
    trades: tuple[TradeRow, ...] = ()
    movements: tuple[MovementRow, ...] = ()
    withdrawals: tuple[WithdrawalRow, ...] = ()
    withdrawal_changes: tuple[WithdrawalChange, ...] = ()
    deposit_changes: tuple[DepositChange, ...] = ()
    assets: tuple[AssetRow, ...] = ()
    pairs: tuple[PairRow, ...] = ()
    book: tuple[UUID, int] | None = None
    """(pair id, the book's seq after this command) for a command that changed the book."""
