"""``BookMirror`` (prices in ticks, quantities in lots): fed only the ``LevelChanged``
events of each command, it shows what the engine's own book shows, and its ``seq`` is the
engine's (the one the events carry: +1 per command that changed a level), also when both
continue from a stored seq."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings

from excentra.engine import BookSnapshot, LevelChanged, PairSpec, Side
from excentra.engine.precision import plain
from excentra.market import BookMirror
from tests.builders import book, btc_usdt
from tests.engine.commands import Command, apply, command_lists

BUY, SELL = Side.BUY, Side.SELL


def as_json(spec: PairSpec, snap: BookSnapshot) -> dict[str, list[dict[str, str]]]:
    def side(levels: tuple[object, ...]) -> list[dict[str, str]]:
        return [{"price": plain(spec.price(lv.price)),  # type: ignore[attr-defined]
                 "quantity": plain(spec.quantity(lv.quantity))}  # type: ignore[attr-defined]
                for lv in levels]

    return {"bids": side(snap.bids), "asks": side(snap.asks)}


@settings(max_examples=200, deadline=None)
@given(command_lists())
def test_mirror_follows_the_engine(commands: list[Command]) -> None:
    engine = book()
    spec = engine.spec
    mirror = BookMirror(spec)
    for command in commands:
        before = engine.seq
        changes = [e for e in apply(engine, command) if isinstance(e, LevelChanged)]
        assert mirror.apply(changes) == (engine.seq != before)
        assert mirror.seq == engine.seq
        for depth in (0, 1, 3, 20):
            assert mirror.snapshot(depth) == as_json(spec, engine.snapshot(depth))


def test_snapshot_is_best_first_aggregated_and_cut_at_depth() -> None:
    spec = btc_usdt()
    mirror = BookMirror(spec)
    mirror.load([(BUY, 9_000, 5), (BUY, 9_100, 2), (BUY, 9_000, 3), (SELL, 9_500, 1),
                 (SELL, 9_400, 4)])
    assert mirror.seq == 0  # loading is not a change
    snap = mirror.snapshot(20)
    assert [Decimal(lv["price"]) for lv in snap["bids"]] == [spec.price(9_100),
                                                           spec.price(9_000)]
    assert [Decimal(lv["quantity"]) for lv in snap["bids"]] == [spec.quantity(2),
                                                              spec.quantity(8)]
    assert [Decimal(lv["price"]) for lv in snap["asks"]] == [spec.price(9_400),
                                                           spec.price(9_500)]
    assert mirror.snapshot(1) == {"bids": snap["bids"][:1], "asks": snap["asks"][:1]}
    assert mirror.snapshot(0) == {"bids": [], "asks": []}
    # one command, several changes: one step; a removed level disappears
    assert mirror.apply([LevelChanged(7, SELL, 9_400, 0, 0),
                         LevelChanged(7, BUY, 9_100, 7, 2)])
    assert mirror.seq == 7  # the seq the events carry, not a count of its own
    assert [lv["price"] for lv in mirror.snapshot(20)["asks"]] == [plain(spec.price(9_500))]
    assert mirror.snapshot(20)["bids"][0]["quantity"] == plain(spec.quantity(7))
    assert not mirror.apply([])  # nothing changed: no step
    assert mirror.seq == 7


def test_levels_print_on_the_pair_grid() -> None:
    mirror = BookMirror(btc_usdt())
    mirror.apply([LevelChanged(1, BUY, 1, 1, 1)])
    level = mirror.snapshot(20)["bids"][0]
    assert level == {"price": plain(btc_usdt().price(1)),
                     "quantity": plain(btc_usdt().quantity(1))}
    assert "E" not in level["price"] + level["quantity"]


def test_a_mirror_continues_from_a_stored_seq() -> None:
    engine = book()
    engine.seq = 41  # a book rebuilt from storage continues from the stored seq
    mirror = BookMirror(engine.spec, seq=41)
    assert mirror.seq == 41
    changes = [e for e in engine.place_limit("o1", "u1", BUY, engine.spec.price(9_000),
                                             engine.spec.quantity(3))
               if isinstance(e, LevelChanged)]
    assert mirror.apply(changes)
    assert mirror.seq == engine.seq == 42
