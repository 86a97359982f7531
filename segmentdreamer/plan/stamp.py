"""The workflow's seal on a run config: a hand-edited ``config.yaml`` never trains or is scored as its variant.

The workflow writes each run's resolved settings (:meth:`~.experiment.Experiment.run_config`) with a first line
that holds the SHA-256 of the YAML below it::

    # planned by the workflow (edit config.yaml, not this file); sha256 of what follows: 3f1c...
    prompt: a corgi
    ...

A train job reads it with :func:`check_planned` (``segmentdreamer train --planned``, which the rules pass): a file
whose text no longer matches its seal was edited after the plan wrote it, and is refused naming the file. To change a
run, change the workflow config (a variant or ``prompt_overrides``): the plan rewrites the file and the run retrains.
Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from ..config import ConfigError

SEAL = "# planned by the workflow (edit config.yaml, not this file); sha256 of what follows: "


def planned_text(settings: dict) -> str:
    """A run config's file text: the seal line, then ``settings`` as YAML that reads back as ``settings`` (unicode
    kept as text where PyYAML round-trips it, escaped where it does not)."""
    body = yaml.safe_dump(settings, sort_keys=False, allow_unicode=True)
    if yaml.safe_load(body) != settings:  # PyYAML writes NEL (U+0085) raw and reads it back as a space
        body = yaml.safe_dump(settings, sort_keys=False, allow_unicode=False)  # every non-ASCII character escaped
    return f"{SEAL}{_digest(body)}\n{body}"


def check_planned(path: str | Path) -> None:
    """Raise :class:`ConfigError` naming ``path`` unless it is a run config as the workflow wrote it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the run config: {error}") from None
    seal, _, body = text.partition("\n")
    if not seal.startswith(SEAL):
        raise ConfigError(f"{path}: not written by the workflow (its first line is not the plan's seal); delete it and "
                          f"the workflow writes it again from its config")
    if seal.removeprefix(SEAL).strip() != _digest(body):
        raise ConfigError(f"{path}: edited after the workflow planned it, so it is not the variant its folder names and "
                          f"is neither trained nor scored. Put the change in the workflow config (variants, prompt_overrides) "
                          f"and delete this file; the workflow writes it again")


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()
