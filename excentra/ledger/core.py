"""Balances, reservations and settlement: the ledger's arithmetic, pure and in integers.

Every amount is an integer number of its asset's minor units (10^-decimals). Each change is
returned as ``Movement`` records — the journal's ledger entries — and applied to the
in-memory balances at the same time, so the two can never disagree.

Invariants (``check()``; DESIGN.md invariant 6):
* per asset, the sum of ``available + held`` over all accounts equals what came in from
  outside (deposits, seed) minus what went out (withdrawals);
* for every account and asset, ``held`` equals the sum of its open reservations (orders
  and pending withdrawals);
* nothing is ever negative.

Money rule (see ``excentra.engine.precision``): a trade's quote amount is rounded
half-to-even on its buy order's running cost (exact on most grids), a buy limit reserves
``price × quantity`` rounded up, fills consume exactly what they cost, and whatever part
of a reservation an order no longer needs (price improvement, rounding, cancelled or
expired remainder, a market budget's leftover) is released at once. Fees are charged on what
a party receives, rounded down to the asset's minor unit (never against the user), and are
credited to ``FEE_ACCOUNT``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import NamedTuple

from excentra.engine import RejectCode
from excentra.engine.precision import EXACT

FEE_ACCOUNT = "00000000-0000-0000-0000-000000000002"
"""The account fees are credited to."""


class LedgerError(AssertionError):
    """The ledger's state broke an invariant: a bug, never a rejection."""


class Movement(NamedTuple):
    """One change to one balance: a journal ledger entry."""

    user_id: str
    asset: str
    available: int
    """Change of ``available`` in minor units (may be negative)."""
    held: int
    """Change of ``held`` in minor units (may be negative)."""
    kind: str
    """``deposit``, ``withdrawal``, ``hold``, ``release``, ``trade``, ``fee``, ``seed``."""
    ref: Hashable
    """The order, trade or withdrawal it belongs to."""


@dataclass(slots=True)
class Balance:
    available: int = 0
    held: int = 0


@dataclass(slots=True)
class Reservation:
    """Funds held for one open order or pending withdrawal."""

    user_id: str
    asset: str
    amount: int


@dataclass(slots=True)
class Ledger:
    """Every account's balances and reservations, in minor units."""

    balances: dict[tuple[str, str], Balance] = field(default_factory=dict)
    reservations: dict[Hashable, Reservation] = field(default_factory=dict)
    external: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Per asset: what came in from outside minus what went out."""

    # -- reading -------------------------------------------------------------------------

    def balance(self, user_id: str, asset: str) -> Balance:
        return self.balances.get((user_id, asset)) or Balance()

    def reserved(self, ref: Hashable) -> int:
        r = self.reservations.get(ref)
        return 0 if r is None else r.amount

    # -- changing ------------------------------------------------------------------------

    def _move(self, out: list[Movement], m: Movement) -> None:
        b = self.balances.get((m.user_id, m.asset))
        if b is None:
            b = self.balances[(m.user_id, m.asset)] = Balance()
        b.available += m.available
        b.held += m.held
        if b.available < 0 or b.held < 0:
            raise LedgerError(f"negative balance after {m}: {b}")
        out.append(m)

    def seed(self, user_id: str, asset: str, amount: int, ref: Hashable) -> list[Movement]:
        """Credit an opening balance (counts as coming from outside, like a deposit)."""
        return self.deposit(user_id, asset, amount, ref, kind="seed")

    def deposit(self, user_id: str, asset: str, amount: int, ref: Hashable,
                kind: str = "deposit") -> list[Movement]:
        if amount <= 0:
            raise LedgerError(f"deposit of {amount}")
        out: list[Movement] = []
        self._move(out, Movement(user_id, asset, amount, 0, kind, ref))
        self.external[asset] += amount
        return out

    def reserve(self, ref: Hashable, user_id: str, asset: str,
                amount: int) -> list[Movement] | RejectCode:
        """Hold ``amount`` for ``ref`` (an order or a withdrawal), if it is available."""
        if ref in self.reservations:
            raise LedgerError(f"{ref!r} already holds funds")
        if amount <= 0:
            raise LedgerError(f"reservation of {amount}")
        if self.balance(user_id, asset).available < amount:
            return RejectCode.INSUFFICIENT_FUNDS
        out: list[Movement] = []
        self._move(out, Movement(user_id, asset, -amount, amount, "hold", ref))
        self.reservations[ref] = Reservation(user_id, asset, amount)
        return out

    def release(self, ref: Hashable, keep: int = 0) -> list[Movement]:
        """Give back all of ``ref``'s reservation but ``keep`` units (0: close it)."""
        r = self.reservations.get(ref)
        if r is None:
            return []
        if not 0 <= keep <= r.amount:
            raise LedgerError(f"{ref!r}: cannot keep {keep} of {r.amount}")
        out: list[Movement] = []
        if r.amount > keep:
            self._move(out, Movement(r.user_id, r.asset, r.amount - keep, keep - r.amount,
                                     "release", ref))
        if keep:
            r.amount = keep
        else:
            del self.reservations[ref]
        return out

    def spend(self, out: list[Movement], ref: Hashable, amount: int, kind: str,
              trade_ref: Hashable) -> None:
        """Pay ``amount`` out of ``ref``'s reservation (held goes down, nothing else)."""
        if not amount:  # a fill that rounds to no quote unit pays nothing (``precision``)
            return
        r = self.reservations.get(ref)
        if r is None or not 0 < amount <= r.amount:
            raise LedgerError(f"{ref!r} reserved {r and r.amount}, cannot spend {amount}")
        r.amount -= amount
        self._move(out, Movement(r.user_id, r.asset, 0, -amount, kind, trade_ref))

    def credit(self, out: list[Movement], user_id: str, asset: str, amount: int, kind: str,
               ref: Hashable) -> None:
        if amount:
            self._move(out, Movement(user_id, asset, amount, 0, kind, ref))

    def complete_withdrawal(self, ref: Hashable, fee: int = 0) -> list[Movement]:
        """The reserved funds left the exchange, but ``fee`` of them: the network fee the
        user paid, which stays, credited to ``FEE_ACCOUNT`` (the exchange pays the gas)."""
        r = self.reservations.pop(ref, None)
        if r is None:
            raise LedgerError(f"no pending withdrawal {ref!r}")
        if not 0 <= fee <= r.amount:
            raise LedgerError(f"{ref!r}: fee {fee} of a withdrawal of {r.amount}")
        out: list[Movement] = []
        self._move(out, Movement(r.user_id, r.asset, 0, -(r.amount - fee), "withdrawal", ref))
        if fee:
            self._move(out, Movement(r.user_id, r.asset, 0, -fee, "withdrawal_fee", ref))
            self._move(out, Movement(FEE_ACCOUNT, r.asset, fee, 0, "withdrawal_fee", ref))
        self.external[r.asset] -= r.amount - fee
        return out

    # -- loading -------------------------------------------------------------------------

    def load(self, balances: Iterable[tuple[str, str, int, int]],
             reservations: Iterable[tuple[Hashable, str, str, int]]) -> None:
        """Rebuild from storage: balances, open reservations; ``external`` = the totals."""
        self.balances.clear()
        self.reservations.clear()
        self.external.clear()
        for user_id, asset, available, held in balances:
            self.balances[(user_id, asset)] = Balance(available, held)
            self.external[asset] += available + held
        for ref, user_id, asset, amount in reservations:
            self.reservations[ref] = Reservation(user_id, asset, amount)
        self.check()

    def check(self) -> None:
        """Raise ``LedgerError`` unless every invariant holds."""
        totals: dict[str, int] = defaultdict(int)
        for (user_id, asset), b in self.balances.items():
            if b.available < 0 or b.held < 0:
                raise LedgerError(f"negative balance {user_id} {asset}: {b}")
            totals[asset] += b.available + b.held
        for asset in set(totals) | set(self.external):
            if totals[asset] != self.external[asset]:
                raise LedgerError(f"{asset}: balances {totals[asset]} != "
                                  f"deposits - withdrawals {self.external[asset]}")
        held: dict[tuple[str, str], int] = defaultdict(int)
        for ref, r in self.reservations.items():
            if r.amount <= 0:
                raise LedgerError(f"reservation {ref!r} of {r.amount}")
            held[(r.user_id, r.asset)] += r.amount
        for key, b in self.balances.items():
            if b.held != held.get(key, 0):
                raise LedgerError(f"{key}: held {b.held} != reservations {held.get(key, 0)}")
        missing = set(held) - set(self.balances)
        if missing:
            raise LedgerError(f"reservations without balances: {missing}")


def fee_units(amount: int, rate: Decimal) -> int:
    """The fee on ``amount`` minor units at ``rate``, rounded down to a whole unit."""
    if not rate:
        return 0
    # EXACT: 18-decimal assets have amounts of 30+ digits; the default 28-digit context
    # would round the product (half-even, possibly up) before it is rounded down.
    return int(EXACT.multiply(Decimal(amount), rate).to_integral_value(rounding=ROUND_DOWN))
