"""The matching engine: pure, synchronous, deterministic order books in integer units."""

from excentra.engine.book import (
    BookIntegrityError,
    BookLevel,
    BookSnapshot,
    OrderBook,
    RestingOrder,
)
from excentra.engine.events import (
    Event,
    LevelChanged,
    OrderAccepted,
    OrderRejected,
    OrderUpdated,
    TradeExecuted,
)
from excentra.engine.precision import MAX_UNITS, GridError, PairSpec
from excentra.engine.types import (
    CancelReason,
    OrderStatus,
    OrderType,
    RejectCode,
    Side,
    StpMode,
    TimeInForce,
)

__all__ = [
    "MAX_UNITS",
    "BookIntegrityError",
    "BookLevel",
    "BookSnapshot",
    "CancelReason",
    "Event",
    "GridError",
    "LevelChanged",
    "OrderAccepted",
    "OrderBook",
    "OrderRejected",
    "OrderStatus",
    "OrderType",
    "OrderUpdated",
    "PairSpec",
    "RejectCode",
    "RestingOrder",
    "Side",
    "StpMode",
    "TimeInForce",
    "TradeExecuted",
]
