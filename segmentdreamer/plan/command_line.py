"""Snakemake's ``--config KEY=VALUE`` values, typed as they would be in a config file.

Snakemake parses a top-level value as int, float or bool, but reads everything inside a mapping or a list
with YAML's base loader, so ``--config 'train={"iterations": 300}' 'seeds=[0,1,2]'`` arrives as
``{"iterations": "300"}`` and ``["0", "1", "2"]``, which the schema rightly rejects. The Snakefile re-types
those strings with YAML's usual rules (numbers, booleans, null) before validating, so a value means the same
on the command line as in a ``--configfile``; anything else stays the string it was.
"""

from __future__ import annotations

from typing import Any

import yaml


def typed_overrides(overrides: Any) -> Any:
    """``overrides`` with every string scalar that YAML reads as a number, boolean or null converted."""
    if isinstance(overrides, dict):
        return {key: typed_overrides(value) for key, value in overrides.items()}
    if isinstance(overrides, list):
        return [typed_overrides(value) for value in overrides]
    if isinstance(overrides, str):
        try:
            parsed = yaml.safe_load(overrides)
        except yaml.YAMLError:
            return overrides
        if parsed is None or isinstance(parsed, (bool, int, float)):
            return parsed
    return overrides
