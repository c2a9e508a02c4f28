"""Helpers shared by the benchmarks: an external workload folder, reporting."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("excentra.bench")


def shared_bench_dir(explicit: str | None = None) -> Path:
    """An external benchmark folder, for ``excentra bench engine --shared``.

    Looked up from ``--shared PATH``, then ``EXCENTRA_SHARED_BENCH``, then as a
    ``shared/bench`` folder upwards from the working directory and from this file, unless
    ``EXCENTRA_SHARED_BENCH_SEARCH=0`` (a clean-room run: only an explicit folder counts).
    """
    candidates = [explicit, os.environ.get("EXCENTRA_SHARED_BENCH")]
    if os.environ.get("EXCENTRA_SHARED_BENCH_SEARCH", "1") != "0":
        for start in (Path.cwd(), Path(__file__).resolve()):
            candidates += [str(p / "shared" / "bench") for p in [start, *start.parents]]
    for c in candidates:
        if c and (Path(c) / "gen_workload.py").is_file():
            return Path(c)
    raise SystemExit("cannot find the external benchmark folder (gen_workload.py, "
                     "run_ref.py): pass --shared PATH or set EXCENTRA_SHARED_BENCH; "
                     "without --shared the built-in workload needs neither")


def run_json(args: list[str]) -> dict[str, Any]:
    """Run a Python script (of the external folder); return the JSON of its last line."""
    out = subprocess.run(  # noqa: S603 (our own interpreter on the shared scripts)
        [sys.executable, *args], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def key_values(pairs: dict[str, object]) -> str:
    """The machine-readable last line: ``key=value`` pairs, in the given order."""
    return " ".join(f"{k}={v}" for k, v in pairs.items())
