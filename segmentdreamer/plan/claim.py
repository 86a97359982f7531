"""One results folder, one checkout: a results folder records which workflow writes into it.

Two checkouts (or two copies of the workflow) pointed at one absolute ``pathvars.results`` would train the
same runs twice into one log and delete each other's outputs when a job fails. The first workflow that
plans into a results folder (a dry run too) writes ``<results>/.workflow.json`` naming its checkout; a
workflow from another existing checkout stops at parse time, before any job, and says how to proceed.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import write_json
from ..config import ConfigError

CLAIM = ".workflow.json"


def claim_results_folder(results: str | Path, checkout: str | Path) -> None:
    """Record ``checkout`` as the writer of ``results``, or fail if another existing checkout already is."""
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
    write_json({"checkout": str(checkout)}, path)
