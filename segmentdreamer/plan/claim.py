"""One results folder, one checkout, one running workflow at a time.

Two checkouts (or two copies of the workflow) pointed at one absolute ``pathvars.results`` would train the
same runs twice into one log and delete each other's outputs when a job fails. The first workflow that
runs jobs into a results folder writes ``<results>/.workflow.json`` naming its checkout; a workflow from
another existing checkout stops at parse time, before any job, and says how to proceed (a dry run checks
the claim without writing it, so ``-n`` works on a read-only folder).

Two working directories of one checkout pass that check, and Snakemake's own lock lives in each working
directory: the second would rerun a job the first is still training (and remove its log). So a workflow
that runs jobs also holds an advisory lock on ``<results>/.workflow.lock`` for as long as its main process
lives (:func:`hold_results_folder`); the second stops at parse time, naming the first.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from pathlib import Path

from ..atomic import write_json
from ..config import ConfigError

log = logging.getLogger(__name__)

CLAIM = ".workflow.json"
LOCK = ".workflow.lock"
_held: dict[Path, object] = {}
"""Open lock files of this process, by results folder (closed, and so released, when the process ends)."""


def claim_results_folder(results: str | Path, checkout: str | Path, write: bool = True) -> None:
    """Record ``checkout`` as the writer of ``results``, or fail if another existing checkout already is.

    ``write=False`` (a dry run) only checks."""
    results, checkout = Path(results).resolve(), Path(checkout).resolve()
    path = results / CLAIM
    if path.is_file():
        owner = Path(json.loads(path.read_text(encoding="utf-8")).get("checkout", ""))
        if owner == checkout:
            return
        if owner.is_dir():
            raise ConfigError(f"pathvars.results: {results} belongs to the workflow in {owner}, not {checkout}: two workflows "
                              f"must not share a results folder. Give this one its own pathvars.results, or delete {path} "
                              "if the other checkout is gone for good.")
    if write:
        write_json({"checkout": str(checkout)}, path)


def hold_results_folder(results: str | Path) -> None:
    """Lock ``results`` for this process's lifetime, or raise :class:`ConfigError` naming the workflow that holds it."""
    results = Path(results).resolve()
    if results in _held:
        return
    results.mkdir(parents=True, exist_ok=True)
    handle = open(results / LOCK, "a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ConfigError(f"pathvars.results: {results} is in use by a running workflow ({holder}); wait until it "
                          "ends, or give this one its own pathvars.results") from None
    except OSError as error:  # a filesystem without advisory locks (some network mounts): run, unguarded, and say so
        handle.close()
        log.warning("pathvars.results: %s cannot be locked (%s); a second workflow on this folder would not be stopped",
                    results, error)
        return
    handle.seek(0)
    handle.truncate()
    handle.write(f"snakemake pid {os.getpid()} on {socket.gethostname()}, working directory {os.getcwd()}\n")
    handle.flush()
    _held[results] = handle
