"""Value types shared by the engine and everything above it.

All enums are ``StrEnum`` so their values are the strings the API uses.
"""

from __future__ import annotations

from enum import StrEnum


class BookIntegrityError(AssertionError):
    """The book's internal state is inconsistent: a bug, never a rejection."""


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(StrEnum):
    GTC = "GTC"
    """Good till cancelled: the unfilled remainder rests (the default)."""
    IOC = "IOC"
    """Immediate or cancel: fill what can be filled now, cancel the rest."""
    FOK = "FOK"
    """Fill or kill: fill the whole quantity now or nothing at all."""


class StpMode(StrEnum):
    """What happens when a taker meets a resting order of its own user."""

    EXPIRE_TAKER = "expire_taker"
    """Stop matching; the taker's remainder is cancelled (the original's rule)."""
    EXPIRE_MAKER = "expire_maker"
    """Cancel the resting own order and keep matching."""
    EXPIRE_BOTH = "expire_both"
    """Cancel the resting own order, stop matching, cancel the taker's remainder."""


class OrderStatus(StrEnum):
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"


class CancelReason(StrEnum):
    """Why an order ended ``cancelled``."""

    USER = "user"
    """Cancelled on request."""
    UNFILLED = "unfilled"
    """A market or IOC order's remainder that found no (more) liquidity."""
    FOK_UNFILLABLE = "fok_unfillable"
    """A fill-or-kill order that could not be filled entirely."""
    SELF_TRADE = "self_trade"
    """Expired by self-trade prevention (taker or maker side)."""


class RejectCode(StrEnum):
    """Why a command was refused. Rejections are values, never exceptions.

    One enum for the whole exchange, grouped by the subsystem that decides; the HTTP layer
    maps each code to a status and message in exactly one place.
    """

    # engine: input on the pair's grid
    PRICE_NOT_POSITIVE = "price_not_positive"
    QUANTITY_NOT_POSITIVE = "quantity_not_positive"
    PRICE_OFF_TICK = "price_off_tick"
    QUANTITY_OFF_LOT = "quantity_off_lot"
    BUDGET_OFF_GRID = "budget_off_grid"
    AMOUNT_TOO_LARGE = "amount_too_large"
    INVALID_NUMBER = "invalid_number"
    # engine: order semantics
    DUPLICATE_ORDER_ID = "duplicate_order_id"
    POST_ONLY_WOULD_TAKE = "post_only_would_take"
    ORDER_NOT_FOUND = "order_not_found"
    # ledger
    INSUFFICIENT_FUNDS = "insufficient_funds"
    AMOUNT_OFF_GRID = "amount_off_grid"
    """More decimal places than the asset has."""
    AMOUNT_NOT_POSITIVE = "amount_not_positive"
    # exchange (the actor core's checks before the engine)
    PAIR_NOT_FOUND = "pair_not_found"
    ASSET_NOT_FOUND = "asset_not_found"
    SELF_CROSS = "self_cross"
    """A limit order would cross the same user's resting order (the original's pre-check)."""
    ORDER_NOT_OPEN = "order_not_open"
    ALREADY_EXISTS = "already_exists"
    UNAVAILABLE = "unavailable"
    """The command did not and will not happen (an actor failed, the core is being
    rebuilt); retry (HTTP 503)."""
    ACCOUNT_SUSPENDED = "account_suspended"
    """The user is suspended: no new orders or withdrawals (cancels still work)."""
    UNSTORABLE = "unstorable"
    """The database refused the command's writes (a row it cannot hold, e.g. a reference to
    a user deleted behind the exchange's back): it did not happen; retrying cannot help."""
    OUTCOME_UNKNOWN = "outcome_unknown"
    """No answer in time: the command may still commit. Retrying with the same key
    (``client_order_id``, ``Idempotency-Key``) answers with its outcome (HTTP 504)."""
    # custody (on-chain deposits and withdrawals)
    BELOW_MINIMUM = "below_minimum"
    """A withdrawal below the asset's minimum."""
    INVALID_ADDRESS = "invalid_address"
    """Not an address of the chain (or a mixed-case one failing its EIP-55 checksum)."""
    WITHDRAWAL_NOT_FOUND = "withdrawal_not_found"
    WITHDRAWAL_WRONG_STATE = "withdrawal_wrong_state"
    """The withdrawal is not in a state that allows this (e.g. approving a sent one)."""
