"""The ledger: balances, reservations and settlement, pure and in integer minor units."""

from excentra.ledger.core import (
    FEE_ACCOUNT,
    Balance,
    Ledger,
    LedgerError,
    Movement,
    Reservation,
    fee_units,
)
from excentra.ledger.settlement import (
    OrderTerms,
    PairTerms,
    SettledTrade,
    reservation,
    settle,
    still_needed,
)

__all__ = [
    "FEE_ACCOUNT",
    "Balance",
    "Ledger",
    "LedgerError",
    "Movement",
    "OrderTerms",
    "PairTerms",
    "Reservation",
    "SettledTrade",
    "fee_units",
    "reservation",
    "settle",
    "still_needed",
]
