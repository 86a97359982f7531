"""Prompt lists: TSV files with a header ``prompt_id<TAB>prompt<TAB>init_prompt[<TAB>seed]``.

Each row is one asset. ``prompt_id`` is the safe handle used in paths and by the workflow (letters,
digits, ``_``, ``-``, ``.``; unique); prompts are taken verbatim (quotes, slashes, unicode, leading or
trailing spaces and shell metacharacters are just text: they never reach a shell). Only ``\n`` (or
``\r\n``) ends a line: U+2028, NEL and the like inside a prompt stay part of it. Errors name the file and
the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
"""Prompt-set names and prompt ids: they become folder and file names (plan/layout.py puts them in paths)."""
HEADER = ["prompt_id", "prompt", "init_prompt"]
SAFE_ID = re.compile(rf"^(?={ID_PATTERN}$).{{1,100}}$")
MAX_SEED = 2**32 - 1
MAX_PROMPT_CHARACTERS = 2000
"""The text encoders read 77 tokens; a prompt 25 times that long is a pasted file, not a prompt (and a run config,
written by a shell line, must stay far below the 128 KiB a shell argument may hold)."""


class PromptListError(ValueError):
    """A malformed prompt list; the message names the file and line."""


@dataclass(frozen=True)
class PromptEntry:
    prompt_id: str
    prompt: str
    init_prompt: str
    seed: int = 0


def read_prompt_list(path: str | Path) -> dict[str, PromptEntry]:
    """Entries by id, in file order. Blank lines and lines starting with ``#`` are skipped."""
    path = Path(path)
    try:
        lines = [line.removesuffix("\r") for line in path.read_text(encoding="utf-8").split("\n")]
    except (OSError, UnicodeDecodeError) as error:
        raise PromptListError(f"{path}: cannot read: {error}") from error
    rows = [(number, line) for number, line in enumerate(lines, start=1) if line.strip() and not line.startswith("#")]
    if not rows:
        raise PromptListError(f"{path}: empty prompt list")
    header_number, header = rows[0]
    columns = header.split("\t")
    if columns not in (HEADER, HEADER + ["seed"]):
        raise PromptListError(f"{path}:{header_number}: header must be {'<TAB>'.join(HEADER)}[<TAB>seed], got {header!r}")
    if len(rows) == 1:
        raise PromptListError(f"{path}:{header_number}: only a header, no prompts")
    entries: dict[str, PromptEntry] = {}
    for number, line in rows[1:]:
        entry = _parse_row(path, number, line.split("\t"), columns)
        if entry.prompt_id in entries:
            raise PromptListError(f"{path}:{number}: duplicate prompt_id {entry.prompt_id!r}")
        entries[entry.prompt_id] = entry
    return entries


def _parse_row(path: Path, number: int, cells: list[str], columns: list[str]) -> PromptEntry:
    where = f"{path}:{number}"
    if len(cells) != len(columns) and not (len(columns) == 4 and len(cells) == 3):
        raise PromptListError(f"{where}: expected {len(columns)} tab-separated columns, got {len(cells)}")
    prompt_id, prompt, init_prompt = cells[0].strip(), cells[1], cells[2]
    if not SAFE_ID.match(prompt_id):
        raise PromptListError(f"{where}: prompt_id {prompt_id!r} must be letters, digits, '_', '-', '.' (at most 100)")
    if not prompt.strip() or not init_prompt.strip():
        raise PromptListError(f"{where}: prompt and init_prompt must not be empty")
    longest = max(len(prompt), len(init_prompt))
    if longest > MAX_PROMPT_CHARACTERS:
        raise PromptListError(f"{where}: a prompt of {longest} characters (at most {MAX_PROMPT_CHARACTERS}; the text "
                              "encoders read 77 tokens)")
    seed = 0
    if len(cells) == 4 and cells[3].strip():
        text = cells[3].strip()
        if not re.fullmatch(r"\d{1,10}", text) or int(text) > MAX_SEED:
            raise PromptListError(f"{where}: seed must be an integer in [0, {MAX_SEED}], got {cells[3]!r}")
        seed = int(text)
    return PromptEntry(prompt_id, prompt, init_prompt, seed)


def lookup(path: str | Path, prompt_id: str) -> PromptEntry:
    entries = read_prompt_list(path)
    if prompt_id not in entries:
        raise PromptListError(f"{path}: no prompt_id {prompt_id!r} (known: {', '.join(list(entries)[:10])}{'...' if len(entries) > 10 else ''})")
    return entries[prompt_id]
