"""Market-data state kept in memory from committed trades and book changes (pure: no I/O,
no threads): the 24 h ticker window and the mirror of each order book."""

from excentra.market.mirror import BookMirror
from excentra.market.ticker import Ticker24h, TickerStats

__all__ = ["BookMirror", "Ticker24h", "TickerStats"]
