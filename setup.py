"""Compiles the matching engine with mypyc at install time; everything else is pure Python.

The engine's three hot modules are plain, strictly typed Python; mypyc turns them into a C
extension that runs the shared benchmark about twice as fast as interpreted
(bench/RESULTS.md). The same sources run unchanged, interpreted, when ``EXCENTRA_PURE=1``
is set at install time (no C compiler needed); ``excentra.engine.COMPILED`` says which one
is running.
"""

import os
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
ENGINE = ["excentra/engine/_state.py", "excentra/engine/book.py", "excentra/engine/events.py"]

ext_modules = []
if os.environ.get("EXCENTRA_PURE") == "1":
    # An earlier compiled editable install left its extensions beside the sources, and
    # Python prefers them to the .py files: remove them, or the sources would not run.
    for built in [*HERE.glob("excentra/engine/*.so"), *HERE.glob("excentra_engine__mypyc*.so")]:
        built.unlink()
else:
    from mypyc.build import mypycify

    ext_modules = mypycify(ENGINE, opt_level="3", debug_level="1", group_name="excentra_engine")

setup(ext_modules=ext_modules)
