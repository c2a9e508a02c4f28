"""``excentra bench engine``: a seeded order flow through ``OrderBook``, against a baseline.

Generates the workload (``excentra.bench.workload``: 200,000 operations around 50,000 by
default, seed 42), replays it through the engine with every feature on (Decimal input
checked against the pair's grid, a user id per order so self-trade prevention is checked
on every fill, every event materialised), and prints the ratio to the baseline
(``excentra.bench.baseline``: a straightforward pure-Python book on ``Decimal``, and the
same code on integer ticks) measured in the same run, in the same process, interleaved
with the engine's passes. Only the replay loops are timed: parsing and string → number
conversion happen before the clock starts. The engine runs as installed: compiled with
mypyc (the default), or interpreted (``EXCENTRA_PURE=1``).

Correctness is checked outside the clock: an untimed engine replay that reads every event
must end in the baseline's outcome (trades, traded quantity, final best bid and ask,
resting orders), the baseline on ticks must agree with it on ``Decimal``, and every timed
engine run must end in the same ``state_hash()`` as the untimed one (the engine is
deterministic).

``--shared [PATH]`` replays an external workload instead: a folder holding
``gen_workload.py`` (writes the workload and its ``expected.json``) and ``run_ref.py``
(its own baseline, timed in a subprocess), from PATH, else ``EXCENTRA_SHARED_BENCH``, else
a ``shared/bench`` folder upwards from here. The engine and this package's baseline must
both reproduce its ``expected.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from excentra.bench import baseline
from excentra.bench.baseline import Outcome
from excentra.bench.common import key_values, run_json, shared_bench_dir
from excentra.bench.workload import LIMIT, MARKET, Flow, Row, generate, parse
from excentra.engine import COMPILED, OrderBook, PairSpec, Side, TradeExecuted

log = logging.getLogger("excentra.bench.engine")

EXAMPLES = """examples:
  excentra bench engine                      # 200,000 operations, 3 interleaved runs
  excentra bench engine --runs 5 --seed 7    # another flow of the same shape
  excentra bench engine --n 20000 --runs 1   # a quick check
  excentra bench engine --save flow.csv      # also keep the workload, to replay elsewhere
  excentra bench engine --shared             # the external workload, if that folder exists
"""

Timer = Callable[[], float]
"""One timed pass of one side; returns operations per second."""

Op = tuple[int, int, Side, Decimal | None, Decimal | None]
"""A row as the engine takes it: kind, order id (also the user id), side, price, qty."""

SPEC = PairSpec.derive("BTC/USDT", base_decimals=8, quote_decimals=6)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="excentra bench engine", description=__doc__,
                                 epilog=EXAMPLES,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="timed passes; the median is reported")
    ap.add_argument("--n", type=int, default=200_000, help="workload operations")
    ap.add_argument("--seed", type=int, default=42, help="the built-in workload's seed")
    ap.add_argument("--save", metavar="FILE", help="also write the built-in workload to FILE")
    ap.add_argument("--shared", nargs="?", const="", metavar="PATH",
                    help="replay an external workload folder instead (see above); "
                         "without PATH: $EXCENTRA_SHARED_BENCH, else searched upwards")
    a = ap.parse_args(argv)
    if a.runs < 1 or a.n < 1:
        ap.error("--runs and --n must be at least 1")
    if a.shared is not None:
        _run_shared(a, shared_bench_dir(a.shared or None))
    else:
        _run_builtin(a)


def _run_builtin(a: argparse.Namespace) -> None:
    log.info("generating the workload", extra={"ops": a.n, "seed": a.seed})
    text = generate(Flow(n=a.n, seed=a.seed))
    if a.save:
        Path(a.save).write_text(text)
    rows = parse(text)
    ticks = baseline.as_ticks(rows)
    log.info("replaying the baseline (untimed)")
    expected = baseline.replay(rows, Decimal(0))[1].outcome()
    on_ticks = baseline.replay(ticks)[1].outcome(baseline.PRICE_SCALE, baseline.QTY_SCALE)
    _require("the baseline on ticks", on_ticks, "the baseline on Decimal", expected)
    ops = engine_ops(rows)
    reference_hash = _verify_engine(ops, expected, "the baseline's")

    def decimal_pass() -> float:
        secs, _ = baseline.replay(rows, Decimal(0))
        return len(rows) / secs

    def ticks_pass() -> float:
        secs, _ = baseline.replay(ticks)
        return len(ticks) / secs

    rates, others = _timed(a.runs, ops, reference_hash,
                           {"baseline": decimal_pass, "baseline int": ticks_pass})
    _report(rates, others, ops_count=len(ops), trades=expected.trades,
            workload=f"built-in (excentra.bench.workload), seed {a.seed}",
            checked="outcome equals the baseline's",
            extra={"workload": "builtin", "seed": a.seed})


def _run_shared(a: argparse.Namespace, shared: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="excentra-bench-") as tmp:
        workload = Path(tmp) / "workload.csv"
        log.info("generating the shared workload", extra={"ops": a.n, "folder": str(shared)})
        run_json([str(shared / "gen_workload.py"), "--n", str(a.n), "-o", str(workload)])
        expected = Outcome.from_expected(
            json.loads(Path(f"{workload}.expected.json").read_text()))
        rows = parse(workload.read_text())
        our_outcome = baseline.replay(rows, Decimal(0))[1].outcome()
        _require("this package's baseline", our_outcome, "expected.json", expected)
        ops = engine_ops(rows)
        reference_hash = _verify_engine(ops, expected, "expected.json")
        ref = [str(shared / "run_ref.py"), "--file", str(workload), "--runs", "1"]

        def decimal_pass() -> float:
            return float(run_json(ref)["ops_per_sec"])

        def ticks_pass() -> float:
            return float(run_json([*ref, "--int"])["ops_per_sec"])

        def our_pass() -> float:
            secs, _ = baseline.replay(rows, Decimal(0))
            return len(rows) / secs

        rates, others = _timed(a.runs, ops, reference_hash, {
            "baseline": decimal_pass, "baseline int": ticks_pass, "ours Decimal": our_pass})
    our_rate = statistics.median(others["ours Decimal"])
    _report(rates, others, ops_count=len(ops), trades=expected.trades,
            workload=f"shared ({shared}), baseline run_ref.py",
            checked="outcome equals expected.json",
            extra={"workload": "shared", "our_baseline_ops_per_sec": round(our_rate)})


def _verify_engine(ops: list[Op], expected: Outcome, source: str) -> str:
    log.info("replaying the engine (untimed, every event read)")
    got, state_hash = engine_outcome(ops)
    _require("the engine", got, source, expected)
    log.info(f"engine outcome equals {source}", extra={"state_hash": state_hash})
    return state_hash


def _require(name: str, got: Outcome, source: str, expected: Outcome) -> None:
    wrong = got.differences(expected)
    if wrong:
        raise SystemExit(f"{name}'s outcome differs from {source} (got, expected): {wrong}")


def _timed(runs: int, ops: list[Op], reference_hash: str,
           passes: dict[str, Timer]) -> tuple[list[float], dict[str, list[float]]]:
    """Interleaved: an engine pass, then one pass of each baseline, repeated. On a noisy
    machine a slow minute then hits both sides instead of only one of them."""
    # The parsed workload is many tuples holding enum members, which the cyclic GC would
    # otherwise traverse on every full collection inside the timed loop (the baseline's
    # rows hold only atoms, which the GC untracks). Freeze it, as parsed input.
    gc.collect()
    gc.freeze()
    rates: list[float] = []
    others: dict[str, list[float]] = {name: [] for name in passes}
    try:
        for i in range(runs):
            secs, book = replay(ops)
            if book.state_hash() != reference_hash:
                raise SystemExit("a timed run ended in a different state: not deterministic")
            del book
            rates.append(len(ops) / secs)
            for name, timed_pass in passes.items():
                others[name].append(timed_pass())
            log.info("run %d/%d: engine %.0f ops/s, %s", i + 1, runs, rates[-1],
                     ", ".join(f"{name} {r[-1]:.0f}" for name, r in others.items()))
    finally:
        gc.unfreeze()
    return rates, others


def _report(rates: list[float], others: dict[str, list[float]], *, ops_count: int,
            trades: int, workload: str, checked: str, extra: dict[str, object]) -> None:
    """The table for people, then one ``key=value`` line for scripts. ``others`` holds
    ``baseline`` (the ratio's denominator) and ``baseline int``, then any more."""
    ours = statistics.median(rates)
    medians = {name: statistics.median(r) for name, r in others.items()}
    base, ticks = medians["baseline"], medians["baseline int"]
    mode = "mypyc-compiled" if COMPILED else "interpreted (installed with EXCENTRA_PURE=1)"
    print(f"workload         {workload}: {ops_count:,} ops, {trades:,} trades")
    print(f"engine           {ours:>10,.0f} ops/s  (median of {len(rates)}; {checked}; {mode})")
    print(f"baseline Decimal {base:>10,.0f} ops/s  (median of {len(rates)}, interleaved)")
    print(f"baseline int     {ticks:>10,.0f} ops/s")
    for name, rate in list(medians.items())[2:]:
        print(f"{name:<16} {rate:>10,.0f} ops/s")
    print(key_values({
        "ratio": f"{ours / base:.2f}",
        "engine_ops_per_sec": round(ours),
        "baseline_ops_per_sec": round(base),
        "baseline_int_ops_per_sec": round(ticks),
        "ratio_vs_int": f"{ours / ticks:.2f}",
        "ops": ops_count,
        "runs": len(rates),
        "compiled": int(COMPILED),
        "cross_check": "passed",
        **extra,
    }))


def engine_ops(rows: list[Row]) -> list[Op]:
    return [(kind, oid, Side.BUY if buy else Side.SELL, price, qty)
            for kind, oid, buy, price, qty in rows]


def replay(ops: list[Op]) -> tuple[float, OrderBook]:
    """One timed pass; every order's user id is its order id (all users differ)."""
    book = OrderBook(SPEC)
    limit, market, cancel = book.place_limit, book.place_market, book.cancel
    t0 = time.perf_counter()
    for kind, oid, side, px, qty in ops:
        if kind == 0:  # LIMIT; literals, as in the baseline's timed loop
            limit(oid, oid, side, px, qty)  # type: ignore[arg-type]
        elif kind == 1:  # MARKET
            market(oid, oid, side, qty)
        else:
            cancel(oid)
    return time.perf_counter() - t0, book


def engine_outcome(ops: list[Op]) -> tuple[Outcome, str]:
    """An untimed pass that reads every event; the outcome and the final state hash."""
    book = OrderBook(SPEC)
    trades = traded = 0
    for kind, oid, side, px, qty in ops:
        if kind == LIMIT:
            events = book.place_limit(oid, oid, side, px, qty)  # type: ignore[arg-type]
        elif kind == MARKET:
            events = book.place_market(oid, oid, side, qty)
        else:
            events = book.cancel(oid)
        for e in events:
            if isinstance(e, TradeExecuted):
                trades += 1
                traded += e.quantity
    book.validate()
    bid, ask = book.best_bid(), book.best_ask()
    outcome = Outcome(trades, SPEC.quantity(traded),
                      None if bid is None else SPEC.price(bid),
                      None if ask is None else SPEC.price(ask), len(book))
    return outcome, book.state_hash()
