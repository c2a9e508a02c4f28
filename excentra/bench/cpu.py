"""CPU time per thread of this process, and of the PostgreSQL server, from ``/proc``.

``excentra bench pipeline --profile`` divides the difference of two snapshots by the
commands acknowledged in between: CPU µs per command, per thread (named by what runs on
it: the event loop, each actor, the SQLite driver threads) and for the database server.
Linux only (``/proc``); elsewhere the snapshots are empty.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_SUFFIX = re.compile(r"(-\d+)?( \(.*\))?$")


def _cpu_seconds(stat: Path) -> float:
    """utime + stime of a ``/proc/.../stat`` file (fields 14 and 15)."""
    try:
        text = stat.read_text()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _group(name: str) -> str:
    """A thread's name without its instance number: ``JournalActor-3`` → ``JournalActor``,
    ``Thread-7 (run)`` → ``Thread`` (aiosqlite's driver threads)."""
    if name == "MainThread":
        return "event loop (MainThread)"
    return _SUFFIX.sub("", name) or name


def threads() -> dict[str, float]:
    """CPU seconds so far per thread group of this process (threads that ended are
    missing: snapshot around work done by live threads)."""
    out: dict[str, float] = {}
    for t in threading.enumerate():
        if t.native_id is None:
            continue
        seconds = _cpu_seconds(Path(f"/proc/self/task/{t.native_id}/stat"))
        key = _group(t.name)
        out[key] = out.get(key, 0.0) + seconds
    return out


def postgres() -> float:
    """CPU seconds so far of every process named ``postgres`` on the machine (the server
    the benchmark uses; other databases' work on the same server counts too)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() != "postgres":
                continue
        except OSError:
            continue
        total += _cpu_seconds(proc / "stat")
    return total


def children() -> float:
    """CPU seconds so far of this process's live descendants (the projection process,
    ``excentra.db.projection_process``, a child of multiprocessing's fork server)."""
    parents: dict[str, str] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            text = (proc / "stat").read_text()
        except OSError:
            continue
        parents[proc.name] = text[text.rindex(")") + 2:].split()[1]
    me, total = str(os.getpid()), 0.0
    for pid in parents:
        up, seen = parents.get(pid), 0
        while up is not None and up != me and seen < 64:
            up, seen = parents.get(up), seen + 1
        if up == me:
            total += _cpu_seconds(Path(f"/proc/{pid}/stat"))
    return total


def process(pid: int | None = None) -> float:
    """CPU seconds so far of a whole process (this one by default)."""
    return _cpu_seconds(Path(f"/proc/{pid or 'self'}/stat"))


def snapshot(with_postgres: bool) -> dict[str, float]:
    snap = threads()
    snap["whole process"] = process()
    snap["child processes (projection)"] = children()
    if with_postgres:
        snap["postgresql server"] = postgres()
    return snap


def per_command(before: dict[str, float], after: dict[str, float],
                commands: int) -> dict[str, float]:
    """CPU µs per command for each key present in both snapshots, largest first."""
    out = {k: (after[k] - before[k]) / max(commands, 1) * 1e6
           for k in after if k in before}
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))
