"""The statement inventory (fixtures/statements/): well formed, quotes on their doc lines, every glob
matching a collected test, every test reached from a statement, both pages covered end to end."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from conformance import matrix
from conformance import statements as st
from conformance.examples import load_examples
from tests.test_examples import DOCS, _collected_ids

PAGES = ("ipvlan-driver-v1.13.md", "ipvlan-driver-current.zh.md")


@functools.cache
def inventory() -> list[st.Statement]:
    return st.load()


def _one(**raw: object) -> st.Statement:
    return st._statement("page.md", {"line": 3, "quote": "q", "level": "must", **raw}, "test entry")


def test_an_entry_names_tests_or_a_reason_never_both_nor_neither() -> None:
    assert _one(tests=["a-*"]).testable and not _one(untestable="a picture").testable
    assert _one(untested="a multicast probe to an l3 container").testable  # testable, not covered yet
    with pytest.raises(st.InventoryError, match="not several"):
        _one(untested="a test", untestable="why")
    with pytest.raises(st.InventoryError, match="not several"):
        _one(tests=["a-*"], untestable="why")
    with pytest.raises(st.InventoryError, match="not neither"):
        _one()
    with pytest.raises(st.InventoryError, match="level 'maybe'"):
        _one(level="maybe", tests=["x"])
    with pytest.raises(st.InventoryError, match="unknown field"):
        _one(tests=["x"], test=["y"])


def test_a_statement_passes_when_all_its_tests_pass() -> None:
    s = _one(tests=["ex-a", "ex-b*"])
    assert st.verdict(s, {"ex-a": "pass", "ex-b1": "pass", "other": "fail"}) == "pass"
    assert st.verdict(s, {"ex-a": "pass", "ex-b1": "fail"}) == "fail"
    assert st.verdict(s, {"ex-a": "pass", "ex-b1": "error"}) == "fail"
    assert st.verdict(s, {"ex-a": "unsupported", "ex-b1": "unsupported"}) == "unsupported"
    assert st.verdict(s, {"ex-a": "pass", "ex-b1": "unsupported"}) == "partial"
    assert st.verdict(s, {"other": "pass"}) == ""


def test_the_inventory_loads_and_covers_both_pages() -> None:
    found = {s.file for s in inventory()}
    assert found == {*PAGES, st.IMPLICIT}


def test_every_glob_matches_a_test_and_every_test_is_reached() -> None:
    bad = st.problems(inventory(), _collected_ids(), docs=None)
    assert not bad, "\n".join(bad)


@pytest.mark.skipif(not DOCS.is_dir(), reason="needs ../shared/docs next to the repository: quotes not checked")
def test_every_quote_is_on_its_line() -> None:
    bad = [p for p in st.problems(inventory(), [], docs=DOCS) if "quote" in p]
    assert not bad, "\n".join(bad)


def claim_lines(text: str) -> list[int]:
    """Lines of a page that could hold a statement: all but blank lines, fences, headings, front matter,
    table header rows, bare labels (`**Vlan ID 20**`, `- Kernel requirements:`) and blockquote markup."""
    out, in_code, front = [], False, False
    lines = text.splitlines()
    for n, line in enumerate(lines, 1):
        bare = line.strip().lstrip(">").strip()
        if n == 1 and line.strip() == "---":
            front = True
            continue
        if front:
            front = line.strip() != "---"
            continue
        if bare.startswith("```"):
            in_code = not in_code
            continue
        if not bare or bare == "[!NOTE]":
            continue
        if not in_code and (
            bare.startswith("#")
            or bare.startswith("| -")
            or bare.startswith("|--")
            or (bare.startswith("**") and bare.endswith("**"))
            or (bare.endswith((":", "：")) and len(bare) < 24)
            or _table_header(lines, n)
        ):
            continue
        out.append(n)
    return out


def _table_header(lines: list[str], n: int) -> bool:
    return n < len(lines) and lines[n - 1].lstrip().startswith("|") and lines[n].lstrip().startswith(("| -", "|-"))


@pytest.mark.skipif(not DOCS.is_dir(), reason="needs ../shared/docs next to the repository")
@pytest.mark.parametrize("page", PAGES)
def test_both_pages_are_covered_end_to_end(page: str) -> None:
    """Every line that could hold a statement has at least one inventory entry."""
    have = {s.line for s in inventory() if s.file == page}
    missing = [n for n in claim_lines((DOCS / page).read_text()) if n not in have]
    assert not missing, f"{page}: lines with no inventory entry: {missing}"


def test_the_end_to_end_check_sees_every_kind_of_line() -> None:
    page = (
        "---\ntitle: x\n---\n# Head\n\nA claim.\n**Label**\n- Kernel requirements:\n"
        "```\nip route\n```\n> [!NOTE]\n> noted\n"
    )
    assert claim_lines(page) == [6, 10, 13]


def test_the_check_catches_a_moved_quote_and_a_stale_glob(tmp_path: Path) -> None:
    (tmp_path / "page.md").write_text("one\nthe gateway is the first address\n")
    good = _one(line=2, quote="the  gateway is", tests=["ex-a"])
    assert st.problems([good], ["ex-a"], tmp_path) == []
    moved = _one(line=1, quote="the gateway is", tests=["ex-zz*"])
    assert st.problems([moved], ["ex-a"], tmp_path) == [
        "page.md:1: quote 'the gateway is' is not on that line",
        "page.md:1: 'ex-zz*' matches no collected test",
        "test ex-a is reached by no statement",
    ]


def test_coverage_counts_testable_and_covered() -> None:
    statements = [_one(tests=["ex-a"]), _one(untested="a probe"), _one(untestable="a picture")]
    c = st.coverage(statements, ["ex-a"])
    assert (c.found, c.testable, c.covered, round(c.percent)) == (3, 2, 1, 50)


def test_the_report_shows_coverage_and_each_statements_verdict(tmp_path: Path) -> None:
    run = tmp_path / "cni"
    run.mkdir()
    results = [
        {"example": "ex", "behaviour": "a", "outcome": "pass"},
        {"example": "ex", "behaviour": "b", "outcome": "fail", "detail": "AssertionError: x"},
    ]
    meta = {"backend": "cni", "kernel": "6.1", "driver": {"driver": "cni ipvlan"}}
    (run / "conformance.json").write_text(json.dumps({"meta": meta, "results": results, "errata": []}))
    statements = [
        _one(line=1, quote="a holds", tests=["ex-a"]),
        _one(line=2, quote="b | holds", tests=["ex-b"]),
        _one(line=3, quote="a picture", level="informative", untestable="describes a picture"),
    ]
    page = matrix.markdown(matrix.load([run]), causes=[], statements=statements)
    assert "## Statement coverage" in page and "3 statements (the two pages" in page and "(100%;" in page
    assert "| page.md:1 | must | a holds | pass |" in page
    assert "| page.md:2 | must | b \\| holds | FAIL |" in page
    assert "| page.md:3 | informative | a picture | untestable |" in page
    assert "| pass | 1 |" in page and "| FAIL | 1 |" in page
    html = matrix.render(matrix.load([run]), statements=statements)
    assert "<h2>Statement coverage</h2>" in html and "title='describes a picture'" in html


def test_every_erratum_is_linked_from_a_statement_of_each_page() -> None:
    """Where the pages disagree (or one contradicts itself), both pages' statements name the erratum."""
    known = {e["id"] for ex in load_examples().values() for e in ex.errata}
    linked: dict[str, set[str]] = {}
    for s in inventory():
        for erratum in s.errata:
            linked.setdefault(erratum, set()).add(s.file)
    assert set(linked) <= known, f"unknown errata: {sorted(set(linked) - known)}"
    assert {e for e, pages in linked.items() if pages >= set(PAGES)} == known
