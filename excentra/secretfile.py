"""Files that hold a secret (the wallet's mnemonic, the JWT secret): created owner-only in
one step, never overwritten."""

from __future__ import annotations

import os
import time
from pathlib import Path


def create_private(path: Path, text: str) -> None:
    """Write ``text`` (and a newline) to a new file only its owner can read;
    ``FileExistsError`` if it exists.

    ``O_EXCL`` with mode 0o600 creates the file with its final permissions (there is no
    moment when others could read it) and never overwrites an existing secret: of two
    processes starting at once, one creates it and the other reads what the first wrote.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text + "\n")
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        # An empty or partial file would fail every later start: leave none behind.
        path.unlink(missing_ok=True)
        raise
    sync_directory(path.parent)


WRITER_WAIT = 5.0
"""Seconds a reader waits for a sibling that has just created a secret file to write it."""


def read_private(path: Path) -> str:
    """The text of a secret file, stripped. A sibling process that created it an instant
    ago may not have written it yet (``create_private`` creates, then writes): an empty
    file is read again for up to ``WRITER_WAIT`` seconds before it is an error."""
    deadline = time.monotonic() + WRITER_WAIT
    while True:
        text = path.read_text(encoding="utf-8").strip()
        if text or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    if not text:
        raise ValueError(f"{path} is empty: delete it to generate a new secret, or restore "
                         "it from a backup")
    return text


def sync_directory(directory: Path) -> None:
    """Make a new file's name durable (its directory entry survives a power cut): deposit
    addresses handed out after a crash must not outlive the mnemonic they came from."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
