"""Safe file handling: atomic writes (a killed job leaves the old file or the new one, never half of one),
an exclusive lock per run folder, and disk-space wording for errors."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_target(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(text: str, path: str | os.PathLike) -> None:
    """``text`` as UTF-8, written atomically (parent folders created)."""
    with atomic_target(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def json_text(record: dict) -> str:
    """``record`` as indented JSON, prompts keeping their unicode: the one JSON format of the results."""
    import json

    return json.dumps(record, indent=2, ensure_ascii=False)


def write_json(record: dict, path: str | os.PathLike) -> None:
    """``record`` as UTF-8 :func:`json_text`, written atomically: the one JSON writer."""
    write_text(json_text(record), path)


def disk_report(folder: Path) -> str:
    """Free space of the disk holding ``folder``, worded for an error message."""
    free = shutil.disk_usage(folder).free
    return f"{free / 2**20:.0f} MB free on the disk holding {folder}" + (" (the disk is full)" if free < 64 * 2**20 else "")


@contextlib.contextmanager
def exclusive_lock(path: Path):
    """An advisory lock on ``path`` for the block; another holder makes it fail at once, naming that process."""
    handle = open(path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise RuntimeError(f"{path.parent} is being trained by {holder}; two jobs must not train one run folder "
                               "(two checkouts sharing one results folder?)") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        yield
    finally:
        handle.close()
