"""``excentra bench engine`` stands alone: its own seeded workload and Decimal baseline,
cross-checked against the engine, with nothing from outside the repository."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from excentra.bench import baseline
from excentra.bench.baseline import Outcome
from excentra.bench.engine import engine_ops, engine_outcome
from excentra.bench.workload import CANCEL, LIMIT, MARKET, Flow, generate, parse

EXCENTRA = [sys.executable, "-c", "from excentra.cli import main; main()"]
D = Decimal


def test_same_seed_same_bytes_other_seed_other_flow() -> None:
    first = generate(Flow(n=5_000, seed=7))
    assert generate(Flow(n=5_000, seed=7)) == first
    assert generate(Flow(n=5_000, seed=8)) != first


def test_the_flow_has_the_documented_shape() -> None:
    rows = parse(generate(Flow(n=20_000, seed=3)))
    kinds = [row[0] for row in rows]
    assert len(rows) == 20_000
    assert 0.57 < kinds.count(LIMIT) / len(rows) < 0.63
    assert 0.08 < kinds.count(MARKET) / len(rows) < 0.12
    new_ids = [oid for kind, oid, *_ in rows if kind != CANCEL]
    assert new_ids == list(range(1, len(new_ids) + 1))  # new ids 1..K in file order
    cancelled = [oid for kind, oid, *_ in rows if kind == CANCEL]
    assert len(set(cancelled)) == len(cancelled)  # each order cancelled at most once
    limits = [(price, qty) for kind, _, _, price, qty in rows if kind == LIMIT]
    assert all(p is not None and p == p.quantize(D("0.01")) for p, _ in limits)
    assert all(q is not None and q == q.quantize(D("0.0001")) and q > 0 for _, q in limits)


def test_baseline_price_time_priority_by_hand() -> None:
    rows = parse("op,id,side,price,qty\n"
                 "L,1,B,100.00,1.0000\n"   # first at 100
                 "L,2,B,100.00,2.0000\n"   # second at 100
                 "L,3,B,101.00,0.5000\n"   # better price
                 "L,4,S,99.00,2.0000\n"    # takes 0.5 @101, 1 @100 (id 1), 0.5 @100 (id 2)
                 "C,9,,,\n"                # unknown: no-op
                 "M,5,S,,5.0000\n"         # takes the 1.5 left of id 2; the rest dropped
                 "L,6,S,102.00,1.0000\n"
                 "L,7,B,90.00,1.0000\n"
                 "C,6,,,\n")
    book = baseline.replay(rows, D(0))[1]
    assert book.outcome() == Outcome(trades=4, traded=D("3.5"), best_bid=D("90"),
                                     best_ask=None, resting=1)
    ticks = baseline.replay(baseline.as_ticks(rows))[1]
    assert ticks.outcome(baseline.PRICE_SCALE, baseline.QTY_SCALE) == book.outcome()
    assert engine_outcome(engine_ops(rows))[0] == book.outcome()


def test_engine_and_baseline_agree_on_a_generated_flow() -> None:
    rows = parse(generate(Flow(n=30_000, seed=11)))
    expected = baseline.replay(rows, D(0))[1].outcome()
    assert expected.trades > 1_000  # a flow that trades
    assert expected.resting > 100  # and rests
    assert engine_outcome(engine_ops(rows))[0] == expected


def test_bench_engine_runs_in_a_clean_room(tmp_path: Path) -> None:
    """No ``EXCENTRA_SHARED_BENCH``, no search upwards, a working directory outside the
    checkout: the built-in workload and baseline are all it needs."""
    env = {k: v for k, v in os.environ.items() if k != "EXCENTRA_SHARED_BENCH"}
    env.update({"EXCENTRA_SHARED_BENCH_SEARCH": "0", "LOG_LEVEL": "INFO"})
    done = subprocess.run([*EXCENTRA, "bench", "engine", "--n", "3000", "--runs", "1",
                           "--save", "flow.csv"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    last = dict(pair.split("=", 1) for pair in done.stdout.strip().splitlines()[-1].split())
    assert (last["cross_check"], last["workload"], last["ops"]) == ("passed", "builtin", "3000")
    assert float(last["ratio"]) > 0
    assert "outcome equals the baseline's" in done.stdout
    assert "engine outcome equals the baseline's" in done.stderr  # progress, as log lines
    assert "run 1/1" in done.stderr
    assert (tmp_path / "flow.csv").read_text() == generate(Flow(n=3000, seed=42))
    # and the external folder is really out of reach in this environment
    shared = subprocess.run([*EXCENTRA, "bench", "engine", "--shared", "--n", "100"],
                            cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    assert shared.returncode == 1
    assert "cannot find the external benchmark folder" in shared.stderr
