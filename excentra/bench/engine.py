"""``excentra bench engine``: the shared workload through ``OrderBook``, against the baseline.

Generates the shared workload, replays it through the engine with every feature on (Decimal
input checked against the pair's grid, a user id per order so self-trade prevention is
checked on every fill, every event materialised), and prints the ratio to ``run_ref.py``
measured in the same run. Only the replay loop is timed, as in ``run_ref.py``. The engine
runs as installed: compiled with mypyc (the default), or interpreted (``EXCENTRA_PURE=1``).

Correctness is checked outside the clock: an untimed replay counts the trades and traded
quantity from the events and must match the workload's ``expected.json`` (trades, traded
quantity, best bid/ask, resting orders), and every timed run must end in the same
``state_hash()`` as that replay (the engine is deterministic).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from excentra.bench.common import key_values, run_json, shared_bench_dir
from excentra.engine import COMPILED, OrderBook, PairSpec, Side, TradeExecuted

log = logging.getLogger("excentra.bench.engine")

Op = tuple[int, int, Side, Decimal | None, Decimal | None]
SPEC = PairSpec.derive("BTC/USDT", base_decimals=8, quote_decimals=6)


def load(path: Path) -> list[Op]:
    ops: list[Op] = []
    with path.open() as f:
        for line in f:
            if line.startswith(("#", "op,")):
                continue
            op, oid, side, px, qty = line.rstrip("\n").split(",")
            s = Side.BUY if side == "B" else Side.SELL
            if op == "L":
                ops.append((0, int(oid), s, Decimal(px), Decimal(qty)))
            elif op == "M":
                ops.append((1, int(oid), s, None, Decimal(qty)))
            else:
                ops.append((2, int(oid), s, None, None))
    return ops


def replay(ops: list[Op]) -> tuple[float, OrderBook]:
    """One timed pass; every order's user id is its order id (all users differ)."""
    book = OrderBook(SPEC)
    limit, market, cancel = book.place_limit, book.place_market, book.cancel
    t0 = time.perf_counter()
    for kind, oid, side, px, qty in ops:
        if kind == 0:
            limit(oid, oid, side, px, qty)  # type: ignore[arg-type]
        elif kind == 1:
            market(oid, oid, side, qty)
        else:
            cancel(oid)
    return time.perf_counter() - t0, book


def verify(ops: list[Op], expected: dict[str, object]) -> str:
    """An untimed pass that reads every event; returns the final state hash."""
    book = OrderBook(SPEC)
    trades = traded = 0
    for kind, oid, side, px, qty in ops:
        if kind == 0:
            events = book.place_limit(oid, oid, side, px, qty)  # type: ignore[arg-type]
        elif kind == 1:
            events = book.place_market(oid, oid, side, qty)
        else:
            events = book.cancel(oid)
        for e in events:
            if isinstance(e, TradeExecuted):
                trades += 1
                traded += e.quantity
    check(book, trades, traded, expected)
    return book.state_hash()


def check(book: OrderBook, trades: int, traded: int, expected: dict[str, object]) -> None:
    got = {
        "trades": trades,
        "traded_qty": str(SPEC.quantity(traded)),
        "best_bid": _price(book.best_bid()),
        "best_ask": _price(book.best_ask()),
        "resting_orders": len(book),
    }
    wrong = {k: (v, expected[k]) for k, v in got.items() if v != expected[k]}
    if wrong:
        raise SystemExit(f"engine outcome differs from expected.json (got, expected): {wrong}")
    book.validate()


def _price(ticks: int | None) -> str | None:
    return None if ticks is None else str(SPEC.price(ticks))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="excentra bench engine", description=__doc__)
    ap.add_argument("--runs", type=int, default=3, help="timed passes; the median is reported")
    ap.add_argument("--n", type=int, default=200_000, help="workload operations")
    ap.add_argument("--shared", help="the shared bench folder (default: found upwards)")
    a = ap.parse_args(argv)
    shared = shared_bench_dir(a.shared)
    with tempfile.TemporaryDirectory(prefix="excentra-bench-") as tmp:
        workload = Path(tmp) / "workload.csv"
        log.info("generating workload n=%d", a.n)
        run_json([str(shared / "gen_workload.py"), "--n", str(a.n), "-o", str(workload)])
        expected = json.loads(Path(f"{workload}.expected.json").read_text())
        ops = load(workload)
        reference_hash = verify(ops, expected)
        log.info("engine outcome equals expected.json", extra={"state_hash": reference_hash})
        # The loaded workload is 200k tuples holding enum members, which the cyclic GC would
        # otherwise traverse on every full collection inside the timed loop (the baseline's
        # tuples hold only atoms, which the GC untracks). Freeze it, as parsed input.
        gc.collect()
        gc.freeze()
        # Interleaved: engine pass, baseline pass, baseline --int pass, repeat. On a noisy
        # machine a slow minute then hits both sides instead of only one of them.
        rates, base_rates, int_rates = [], [], []
        ref_file = ["--file", str(workload), "--runs", "1"]
        for i in range(a.runs):
            secs, book = replay(ops)
            if book.state_hash() != reference_hash:
                raise SystemExit("a timed run ended in a different state: not deterministic")
            rates.append(len(ops) / secs)
            base_rates.append(run_json([str(shared / "run_ref.py"), *ref_file])["ops_per_sec"])
            int_rates.append(run_json([str(shared / "run_ref.py"), *ref_file, "--int"])[
                "ops_per_sec"])
            log.info("run %d/%d: engine %.0f ops/s, baseline %d, baseline int %d", i + 1,
                     a.runs, rates[-1], base_rates[-1], int_rates[-1])
        ref = {"ops_per_sec": round(statistics.median(base_rates))}
        ref_int = {"ops_per_sec": round(statistics.median(int_rates))}
    ours = statistics.median(rates)
    base = ref["ops_per_sec"]
    mode = "mypyc-compiled" if COMPILED else "interpreted (installed with EXCENTRA_PURE=1)"
    print(f"engine           {ours:>10,.0f} ops/s  (median of {a.runs}; {len(ops):,} ops, "
          f"{expected['trades']:,} trades; outcome equals expected.json; {mode})")
    print(f"baseline Decimal {base:>10,.0f} ops/s  (median of {a.runs}, interleaved)")
    print(f"baseline int     {ref_int['ops_per_sec']:>10,.0f} ops/s")
    print(key_values({
        "ratio": f"{ours / base:.2f}",
        "engine_ops_per_sec": round(ours),
        "baseline_ops_per_sec": base,
        "baseline_int_ops_per_sec": ref_int["ops_per_sec"],
        "ratio_vs_int": f"{ours / ref_int['ops_per_sec']:.2f}",
        "ops": len(ops),
        "runs": a.runs,
        "compiled": int(COMPILED),
    }))
