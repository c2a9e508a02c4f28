"""The engine as installed: compiled with mypyc, and refusing to run a stale build."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

import excentra.engine
from excentra.engine import _compiled


def _files(tmp_path: Path, source_age: float, built_age: float) -> SimpleNamespace:
    source = tmp_path / "book.py"
    built = tmp_path / "book.cpython-311-x86_64-linux-gnu.so"
    for path, age in ((source, source_age), (built, built_age)):
        path.write_text("")
        stamp = 1_800_000_000 - age
        os.utime(path, (stamp, stamp))
    return SimpleNamespace(__file__=str(built))


def test_a_module_loaded_from_source_is_not_compiled(tmp_path: Path) -> None:
    source = tmp_path / "book.py"
    source.write_text("")
    assert _compiled(SimpleNamespace(__file__=str(source))) is False


def test_a_build_newer_than_its_source_is_compiled(tmp_path: Path) -> None:
    assert _compiled(_files(tmp_path, source_age=60, built_age=10)) is True


def test_a_source_edited_after_the_build_refuses_to_load(tmp_path: Path) -> None:
    with pytest.raises(ImportError, match=r"book\.py changed after it was compiled"):
        _compiled(_files(tmp_path, source_age=10, built_age=60))


def test_the_flag_describes_the_loaded_modules() -> None:
    loaded = Path(str(excentra.engine.book.__file__))
    assert excentra.engine.COMPILED is (loaded.suffix != ".py")
