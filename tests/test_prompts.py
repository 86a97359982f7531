"""Prompt lists: schema, safe ids, verbatim prompts, errors with file:line."""

from pathlib import Path

import pytest

from segmentdreamer.prompts import PromptListError, lookup, read_prompt_list

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, text):
    path = tmp_path / "p.tsv"
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_entries_verbatim_with_optional_seed(tmp_path):
    path = write(tmp_path, "# comment\nprompt_id\tprompt\tinit_prompt\tseed\n"
                           "crown\tA DSLR photo of the \"Imperial\" Crown; $(rm -rf /) `x` ünï/cødé\ta crown.\t7\n"
                           "hulk\tA portrait of the Hulk, head\ta man head.\t\n")
    entries = read_prompt_list(path)
    assert list(entries) == ["crown", "hulk"]
    assert entries["crown"].prompt == 'A DSLR photo of the "Imperial" Crown; $(rm -rf /) `x` ünï/cødé'
    assert entries["crown"].seed == 7 and entries["hulk"].seed == 0
    assert lookup(path, "hulk").init_prompt == "a man head."


@pytest.mark.parametrize(
    "text,message",
    [
        ("id\tprompt\tinit_prompt\n", r":1: header must be"),
        ("prompt_id\tprompt\tinit_prompt\nbad id\tp\ti\n", r":2: prompt_id 'bad id'"),
        ("prompt_id\tprompt\tinit_prompt\na\tp\ti\na\tq\tj\n", r":3: duplicate prompt_id 'a'"),
        ("prompt_id\tprompt\tinit_prompt\na\tp\n", r":2: expected 3 tab-separated columns"),
        ("prompt_id\tprompt\tinit_prompt\tseed\na\tp\ti\tx\n", r":2: seed must be an integer"),
        ("prompt_id\tprompt\tinit_prompt\na\t\ti\n", r":2: prompt and init_prompt must not be empty"),
        ("prompt_id\tprompt\tinit_prompt\na\tp\ti\nb\t" + "x" * 2001 + "\ti\n", r":3: a prompt of 2001 characters"),
        ("", "empty prompt list"),
    ],
)
def test_errors_name_file_and_line(tmp_path, text, message):
    with pytest.raises(PromptListError, match=message):
        read_prompt_list(write(tmp_path, text))


def test_unknown_id(tmp_path):
    with pytest.raises(PromptListError, match="no prompt_id 'z'"):
        lookup(write(tmp_path, "prompt_id\tprompt\tinit_prompt\na\tp\ti\n"), "z")


@pytest.mark.parametrize("name,count", [("dreamfusion40", 40), ("gallery", 14), ("ablation", 1)])
def test_shipped_prompt_lists_are_valid(name, count):
    from pathlib import Path

    entries = read_prompt_list(Path(__file__).resolve().parents[1] / "prompts" / f"{name}.tsv")
    assert len(entries) == count


def test_dreamfusion40_matches_the_paper_table():
    from pathlib import Path

    entries = read_prompt_list(Path(__file__).resolve().parents[1] / "prompts" / "dreamfusion40.tsv")
    prompts = [e.prompt for e in entries.values()]
    assert prompts[0] == "A cat with a mullet" and prompts[6] == "A DSLR photo of the Imperial State Crown of England"
    assert prompts[-1] == "A DSLR photo of a shiny beetle"


@pytest.mark.parametrize(("group", "first", "last"), [
    ("single", "A cactus with pink flowers", "A classic leatherette radio with dials"),
    ("surr", "A white seashell on a sandy beach", "A pair of neon running shoes waiting by the treadmill"),
    ("multi", "An artist is painting on a blank canvas", "An old brass key longs for the dusted antique chest it could unlock"),
])
def test_t3bench_prompt_sets_hold_their_100_prompts_in_order(group, first, last):
    entries = list(read_prompt_list(ROOT / "prompts" / f"t3bench_{group}.tsv").values())
    assert len(entries) == 100 and len({e.prompt for e in entries}) == 100
    assert entries[0].prompt == first and entries[-1].prompt == last
    assert all(e.prompt_id.startswith(f"t3_{group}_{i:03d}_") and e.init_prompt == e.prompt for i, e in enumerate(entries))
