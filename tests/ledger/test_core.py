"""Unit tests of ``Ledger``: balances, reservations, invariants, and ``fee_units``."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from excentra.engine import RejectCode
from excentra.ledger import Balance, Ledger, LedgerError, Movement, Reservation, fee_units

D = Decimal
ALICE, BOB = "alice", "bob"


def funded(available: int = 1_000, asset: str = "BTC", user: str = ALICE) -> Ledger:
    ledger = Ledger()
    ledger.deposit(user, asset, available, "dep-1")
    return ledger


def state(ledger: Ledger) -> tuple[object, ...]:
    return (copy.deepcopy(ledger.balances), copy.deepcopy(ledger.reservations),
            dict(ledger.external))


# -- deposit ---------------------------------------------------------------------------------


def test_deposit_credits_available_and_the_external_total() -> None:
    ledger = Ledger()
    moves = ledger.deposit(ALICE, "BTC", 150, "d1")
    assert moves == [Movement(ALICE, "BTC", 150, 0, "deposit", "d1")]
    assert ledger.balance(ALICE, "BTC") == Balance(150, 0)
    assert ledger.external["BTC"] == 150
    ledger.deposit(ALICE, "BTC", 50, "d2")
    assert ledger.balance(ALICE, "BTC") == Balance(200, 0)
    assert ledger.external["BTC"] == 200
    ledger.check()


def test_seed_is_a_deposit_of_kind_seed() -> None:
    ledger = Ledger()
    assert ledger.seed(ALICE, "USDT", 7, "s") == [Movement(ALICE, "USDT", 7, 0, "seed", "s")]
    assert ledger.external["USDT"] == 7
    ledger.check()


@pytest.mark.parametrize("amount", [0, -1])
def test_deposit_of_nothing_or_less_is_a_bug(amount: int) -> None:
    ledger = Ledger()
    with pytest.raises(LedgerError):
        ledger.deposit(ALICE, "BTC", amount, "d")
    assert not ledger.balances
    assert ledger.external["BTC"] == 0


def test_unknown_account_reads_as_zero() -> None:
    ledger = Ledger()
    assert ledger.balance("nobody", "BTC") == Balance(0, 0)
    assert ledger.reserved("nothing") == 0


# -- reserve / release -----------------------------------------------------------------------


def test_reserve_moves_available_to_held() -> None:
    ledger = funded(1_000)
    moves = ledger.reserve("o1", ALICE, "BTC", 400)
    assert moves == [Movement(ALICE, "BTC", -400, 400, "hold", "o1")]
    assert ledger.balance(ALICE, "BTC") == Balance(600, 400)
    assert ledger.reservations["o1"] == Reservation(ALICE, "BTC", 400)
    assert ledger.reserved("o1") == 400
    assert ledger.external["BTC"] == 1_000
    ledger.check()


def test_reserve_everything_available_is_allowed() -> None:
    ledger = funded(1_000)
    ledger.reserve("o1", ALICE, "BTC", 1_000)
    assert ledger.balance(ALICE, "BTC") == Balance(0, 1_000)
    ledger.check()


@pytest.mark.parametrize(("user", "asset", "amount"), [
    (ALICE, "BTC", 1_001),  # one unit short
    (ALICE, "USDT", 1),  # another asset
    (BOB, "BTC", 1),  # another user
])
def test_reserve_short_is_rejected_and_changes_nothing(user: str, asset: str,
                                                       amount: int) -> None:
    ledger = funded(1_000)
    ledger.reserve("o0", ALICE, "BTC", 100)
    before = state(ledger)
    assert ledger.reserve("o1", user, asset, amount) is RejectCode.INSUFFICIENT_FUNDS
    assert state(ledger) == before
    assert "o1" not in ledger.reservations
    ledger.check()


def test_reserve_twice_for_one_ref_is_a_bug() -> None:
    ledger = funded(1_000)
    ledger.reserve("o1", ALICE, "BTC", 10)
    with pytest.raises(LedgerError):
        ledger.reserve("o1", ALICE, "BTC", 10)
    assert ledger.reserved("o1") == 10


@pytest.mark.parametrize("amount", [0, -5])
def test_reserve_of_nothing_is_a_bug(amount: int) -> None:
    ledger = funded(1_000)
    with pytest.raises(LedgerError):
        ledger.reserve("o1", ALICE, "BTC", amount)


def test_release_keep_gives_back_all_but_keep() -> None:
    ledger = funded(1_000)
    ledger.reserve("o1", ALICE, "BTC", 400)
    moves = ledger.release("o1", keep=150)
    assert moves == [Movement(ALICE, "BTC", 250, -250, "release", "o1")]
    assert ledger.balance(ALICE, "BTC") == Balance(850, 150)
    assert ledger.reserved("o1") == 150
    ledger.check()


def test_release_keeping_everything_moves_nothing() -> None:
    ledger = funded(1_000)
    ledger.reserve("o1", ALICE, "BTC", 400)
    assert ledger.release("o1", keep=400) == []
    assert ledger.reserved("o1") == 400
    ledger.check()


def test_release_without_keep_closes_the_reservation() -> None:
    ledger = funded(1_000)
    ledger.reserve("o1", ALICE, "BTC", 400)
    assert ledger.release("o1") == [Movement(ALICE, "BTC", 400, -400, "release", "o1")]
    assert "o1" not in ledger.reservations
    assert ledger.balance(ALICE, "BTC") == Balance(1_000, 0)
    assert ledger.release("o1") == []  # idempotent
    ledger.check()


def test_release_of_an_unknown_ref_does_nothing() -> None:
    ledger = funded(1_000)
    before = state(ledger)
    assert ledger.release("nope") == []
    assert ledger.release("nope", keep=5) == []
    assert state(ledger) == before


@pytest.mark.parametrize("keep", [-1, 401])
def test_release_keeping_more_than_held_or_less_than_nothing_is_a_bug(keep: int) -> None:
    ledger = funded(1_000)
    ledger.reserve("o1", ALICE, "BTC", 400)
    with pytest.raises(LedgerError):
        ledger.release("o1", keep=keep)
    assert ledger.reserved("o1") == 400
    ledger.check()


# -- spend / credit --------------------------------------------------------------------------


def test_spend_takes_from_the_reservation_and_held_only() -> None:
    ledger = funded(1_000)
    ledger.reserve("o1", ALICE, "BTC", 400)
    out: list[Movement] = []
    ledger.spend(out, "o1", 300, "trade", "t1")
    assert out == [Movement(ALICE, "BTC", 0, -300, "trade", "t1")]
    assert ledger.balance(ALICE, "BTC") == Balance(600, 100)
    assert ledger.reserved("o1") == 100
    # what left is credited elsewhere: spend + credit keeps the totals
    ledger.credit(out, BOB, "BTC", 300, "trade", "t1")
    assert out[-1] == Movement(BOB, "BTC", 300, 0, "trade", "t1")
    ledger.check()


def test_spend_everything_leaves_an_empty_reservation_to_release() -> None:
    ledger = funded(1_000)
    ledger.reserve("o1", ALICE, "BTC", 400)
    out: list[Movement] = []
    ledger.spend(out, "o1", 400, "trade", "t1")
    ledger.credit(out, BOB, "BTC", 400, "trade", "t1")
    assert ledger.reserved("o1") == 0
    assert ledger.release("o1") == []
    assert "o1" not in ledger.reservations
    ledger.check()


@pytest.mark.parametrize(("ref", "amount"), [("o1", 401), ("nope", 1)])
def test_spend_beyond_the_reservation_is_a_bug(ref: str, amount: int) -> None:
    ledger = funded(1_000)
    ledger.reserve("o1", ALICE, "BTC", 400)
    with pytest.raises(LedgerError):
        ledger.spend([], ref, amount, "trade", "t1")
    assert ledger.reserved("o1") == 400


def test_credit_of_zero_records_nothing() -> None:
    ledger = Ledger()
    out: list[Movement] = []
    ledger.credit(out, ALICE, "BTC", 0, "fee", "t1")
    assert out == []
    assert (ALICE, "BTC") not in ledger.balances


# -- negative balances -----------------------------------------------------------------------


def test_a_movement_that_would_go_negative_raises() -> None:
    ledger = funded(100)
    with pytest.raises(LedgerError, match="negative"):
        ledger.credit([], ALICE, "BTC", -101, "trade", "t")


def test_spending_a_reservation_held_does_not_cover_raises() -> None:
    ledger = funded(100)
    ledger.reservations["ghost"] = Reservation(ALICE, "BTC", 50)  # corrupt: held is 0
    with pytest.raises(LedgerError, match="negative"):
        ledger.spend([], "ghost", 50, "trade", "t")


# -- withdrawals -----------------------------------------------------------------------------


def test_complete_withdrawal_removes_held_and_the_external_total() -> None:
    ledger = funded(1_000)
    ledger.reserve("w1", ALICE, "BTC", 300)
    moves = ledger.complete_withdrawal("w1")
    assert moves == [Movement(ALICE, "BTC", 0, -300, "withdrawal", "w1")]
    assert ledger.balance(ALICE, "BTC") == Balance(700, 0)
    assert ledger.external["BTC"] == 700
    assert "w1" not in ledger.reservations
    ledger.check()


def test_complete_an_unknown_withdrawal_is_a_bug() -> None:
    ledger = funded(1_000)
    with pytest.raises(LedgerError):
        ledger.complete_withdrawal("w1")
    ledger.reserve("w1", ALICE, "BTC", 300)
    ledger.complete_withdrawal("w1")
    with pytest.raises(LedgerError):
        ledger.complete_withdrawal("w1")  # only once
    ledger.check()


# -- check -----------------------------------------------------------------------------------


def test_check_catches_held_differing_from_reservations() -> None:
    ledger = funded(1_000)
    ledger.reserve("o1", ALICE, "BTC", 400)
    b = ledger.balances[(ALICE, "BTC")]
    b.available, b.held = b.available - 1, b.held + 1  # totals still right
    with pytest.raises(LedgerError, match="held"):
        ledger.check()


def test_check_catches_a_reservation_that_is_not_held() -> None:
    ledger = funded(1_000)
    ledger.reservations["o1"] = Reservation(ALICE, "BTC", 1)
    with pytest.raises(LedgerError, match="held"):
        ledger.check()


def test_check_catches_a_reservation_without_a_balance() -> None:
    ledger = funded(1_000)
    ledger.reservations["o1"] = Reservation(BOB, "BTC", 1)
    with pytest.raises(LedgerError, match="without balances"):
        ledger.check()


def test_check_catches_totals_differing_from_external() -> None:
    ledger = funded(1_000)
    ledger.balances[(BOB, "BTC")] = Balance(1, 0)  # money from nowhere
    with pytest.raises(LedgerError, match="BTC"):
        ledger.check()


def test_check_catches_external_money_with_no_balance() -> None:
    ledger = funded(1_000)
    ledger.external["USDT"] += 5  # came in, credited to nobody
    with pytest.raises(LedgerError, match="USDT"):
        ledger.check()


def test_check_catches_a_negative_balance() -> None:
    ledger = funded(1_000)
    ledger.balances[(BOB, "BTC")] = Balance(-1, 0)
    ledger.balances[(ALICE, "BTC")] = Balance(1_001, 0)  # totals still right
    with pytest.raises(LedgerError, match="negative"):
        ledger.check()


def test_check_catches_a_negative_reservation() -> None:
    ledger = Ledger()
    with pytest.raises(LedgerError):
        ledger.load([(ALICE, "BTC", 10, 0)],
                    [("o1", ALICE, "BTC", 5), ("o2", ALICE, "BTC", -5)])


# -- load ------------------------------------------------------------------------------------


def test_load_rebuilds_balances_reservations_and_external_totals() -> None:
    ledger = funded(999, "ETH", BOB)  # replaced entirely by load
    ledger.reserve("old", BOB, "ETH", 9)
    ledger.load(
        [(ALICE, "BTC", 600, 400), (BOB, "BTC", 5, 0), (ALICE, "USDT", 0, 70)],
        [("o1", ALICE, "BTC", 300), ("w1", ALICE, "BTC", 100), ("o2", ALICE, "USDT", 70)],
    )
    assert ledger.balance(ALICE, "BTC") == Balance(600, 400)
    assert ledger.balance(BOB, "ETH") == Balance(0, 0)
    assert ledger.reserved("old") == 0
    assert ledger.reserved("o1") == 300
    assert dict(ledger.external) == {"BTC": 1_005, "USDT": 70}
    # and it works on from there
    ledger.complete_withdrawal("w1")
    ledger.release("o1")
    assert ledger.balance(ALICE, "BTC") == Balance(900, 0)
    assert ledger.external["BTC"] == 905
    ledger.check()


@pytest.mark.parametrize(("balances", "reservations"), [
    ([(ALICE, "BTC", 600, 400)], [("o1", ALICE, "BTC", 300)]),  # held != reservations
    ([(ALICE, "BTC", 600, 0)], [("o1", ALICE, "BTC", 300)]),  # reservation not held
    ([(ALICE, "BTC", -1, 0)], []),  # negative
    ([(ALICE, "BTC", 10, 0)], [("o1", BOB, "BTC", 3)]),  # reservation without balance
])
def test_load_checks_what_it_loaded(balances: list[tuple[str, str, int, int]],
                                    reservations: list[tuple[str, str, str, int]]) -> None:
    with pytest.raises(LedgerError):
        Ledger().load(balances, reservations)


# -- fee_units -------------------------------------------------------------------------------


@pytest.mark.parametrize(("amount", "rate", "fee"), [
    (999, "0.001", 0),
    (1_000, "0.001", 1),
    (1_999, "0.001", 1),
    (2_000, "0.001", 2),
    (499, "0.002", 0),
    (500, "0.002", 1),
    (6_169_998_766, "0.001", 6_169_998),
    (1_000_000, "0", 0),
    (1_000_000, "0.000", 0),
    (0, "0.001", 0),
    (10**21, "0.0025", 25 * 10**17),
])
def test_fee_units_rounds_down_to_a_whole_unit(amount: int, rate: str, fee: int) -> None:
    assert fee_units(amount, D(rate)) == fee


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**24), st.sampled_from(["0.001", "0.002", "0.0015", "0.00075", "0.1"]))
def test_fee_units_is_the_exact_floor_for_realistic_amounts(amount: int, rate: str) -> None:
    n, d = D(rate).as_integer_ratio()
    assert fee_units(amount, D(rate)) == amount * n // d


@pytest.mark.parametrize(("amount", "rate"), [
    (10**30 - 1, "0.002"),
    (1_234_567_890_123_456_789_012_345_678_999, "0.001"),
])
def test_fee_units_rounds_down_for_amounts_beyond_28_digits(amount: int, rate: str) -> None:
    """Regression: the product must not be rounded (28-digit context) before the floor."""
    n, d = D(rate).as_integer_ratio()
    assert fee_units(amount, D(rate)) == amount * n // d
