"""The matching engine: pure, synchronous, deterministic order books in integer units.

``_state``, ``book`` and ``events`` are compiled with mypyc when the package is installed
(``setup.py``); ``COMPILED`` says whether this process runs them compiled or interpreted.
"""

from pathlib import Path

from excentra.engine import _state, book, events
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


def _compiled(*modules: object) -> bool:
    """Whether the engine modules were loaded from the compiled extension.

    A compiled module is preferred over its ``.py`` by Python's import system, so an edit
    to the source would silently not run; this refuses to start instead.
    """
    compiled = False
    for module in modules:
        built = Path(str(getattr(module, "__file__", "")))
        if built.suffix == ".py":
            continue
        compiled = True
        source = built.with_name(built.name.split(".", 1)[0] + ".py")
        if source.exists() and source.stat().st_mtime > built.stat().st_mtime + 1:
            raise ImportError(
                f"{source} changed after it was compiled; rebuild with `pip install -e .` "
                "(or reinstall with EXCENTRA_PURE=1 to run the engine interpreted)")
    return compiled


COMPILED = _compiled(_state, book, events)
"""True when the engine runs as the mypyc-compiled extension (the normal install)."""

__all__ = [
    "COMPILED",
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
