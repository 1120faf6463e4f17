"""The statement inventory: every testable sentence, printed output, option row and command comment of
the pages in ../shared/docs, each tied to the tests that check it or to the reason none can
(fixtures/statements/<page>.yaml). It answers "which statements of the page does the suite check?"."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from . import yamlfile
from .data import FIXTURES

STATEMENTS = FIXTURES / "statements"
IMPLICIT = "implicit"  # the `file` of statements the pages take for granted (no page line to quote)
LEVELS = ("must", "should", "output", "informative")  # informative: describes, claims nothing testable
FIELDS = {"line", "quote", "level", "tests", "untestable", "untested", "errata", "note"}


class InventoryError(ValueError):
    """A statements file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class Statement:
    file: str  # the page, as in fixtures' doc refs
    line: int
    quote: str  # a short verbatim part of that line
    level: str
    tests: tuple[str, ...]  # test ids or fnmatch globs over them (`ipvlan20-ping-*`)
    untestable: str = ""  # why no test can check it here
    untested: str = ""  # testable, but no test checks it yet: what test would (exactly one of the three)
    errata: tuple[str, ...] = ()  # where the two pages (or a page and itself) disagree

    @property
    def ref(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def testable(self) -> bool:
        return not self.untestable

    def matches(self, test_ids: Iterable[str]) -> list[str]:
        return [t for t in test_ids if any(fnmatch.fnmatchcase(t, g) for g in self.tests)]


def load(directory: Path = STATEMENTS) -> list[Statement]:
    out: list[Statement] = []
    for path in sorted(directory.glob("*.yaml")):
        data = yamlfile.load(path)
        page = str(data["file"])
        for n, raw in enumerate(data.get("statements") or []):
            out.append(_statement(page, raw, f"{path.name} entry {n + 1}"))
    return out


def _statement(page: str, raw: Mapping[str, object], where: str) -> Statement:
    unknown = set(raw) - FIELDS
    if unknown:
        raise InventoryError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    level = str(raw.get("level", ""))
    if level not in LEVELS:
        raise InventoryError(f"{where}: level {level!r} is not one of {', '.join(LEVELS)}")
    tests = tuple(str(t) for t in raw.get("tests") or ())  # type: ignore[attr-defined]
    untestable, untested = str(raw.get("untestable") or ""), str(raw.get("untested") or "")
    given = sum(map(bool, (tests, untestable, untested)))
    if given != 1:
        raise InventoryError(
            f"{where}: give exactly one of tests, untestable (why not), untested (what test would), "
            f"not {'neither' if not given else 'several'}"
        )
    line, quote = raw.get("line"), str(raw.get("quote") or "")
    if not isinstance(line, int) or not quote:
        raise InventoryError(f"{where}: needs a line number and a quote")
    errata = tuple(str(e) for e in raw.get("errata") or ())  # type: ignore[attr-defined]
    return Statement(page, line, quote, level, tests, untestable, untested, errata)


def problems(statements: list[Statement], test_ids: Iterable[str], docs: Path | None) -> list[str]:
    """What makes the inventory untrustworthy: quotes not on their line, globs that match no test, tests no
    statement reaches. `docs` None: the quotes are not checked (the pages are not next to the repository)."""
    ids = list(test_ids)
    found: list[str] = []
    pages: dict[str, list[str]] = {}
    for s in statements:
        if docs is not None and s.file != IMPLICIT:
            lines = pages.setdefault(s.file, (docs / s.file).read_text().splitlines())
            if not 0 < s.line <= len(lines) or _squash(s.quote) not in _squash(lines[s.line - 1]):
                found.append(f"{s.ref}: quote {s.quote!r} is not on that line")
        for glob in s.tests:
            if not any(fnmatch.fnmatchcase(t, glob) for t in ids):
                found.append(f"{s.ref}: {glob!r} matches no collected test")
    reached = {t for s in statements for t in s.matches(ids)}
    found += [f"test {t} is reached by no statement" for t in ids if t not in reached]
    return found


def _squash(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class Coverage:
    found: int
    testable: int
    covered: int  # testable statements with at least one collected test

    @property
    def percent(self) -> float:
        return 100.0 * self.covered / self.testable if self.testable else 0.0


def coverage(statements: list[Statement], test_ids: Iterable[str]) -> Coverage:
    ids = list(test_ids)
    testable = [s for s in statements if s.testable]
    return Coverage(len(statements), len(testable), sum(1 for s in testable if s.matches(ids)))


def verdict(statement: Statement, outcomes: Mapping[str, str]) -> str:
    """One column's verdict. pass: every test of the statement passed; fail: one failed or errored;
    unsupported: the backend lacks all of them; partial: passed where they ran, some not run (unsupported
    or skipped); '' when none of its tests is in the column."""
    seen = [outcomes[t] for t in statement.matches(outcomes)]
    if not seen:
        return ""
    if any(o in ("fail", "error") for o in seen):
        return "fail"
    if all(o == "pass" for o in seen):
        return "pass"
    if all(o == "unsupported" for o in seen):
        return "unsupported"
    return "partial" if "pass" in seen else "skipped"


def main(argv: list[str] | None = None) -> int:
    """`python -m conformance.statements FILE... --ids IDS --docs DIR`: check entries of some files (quotes
    on their lines, globs matching a collected id); prints what is wrong and the coverage figures."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--ids", type=Path, required=True, help="a file of collected test ids, one per line")
    parser.add_argument("--docs", type=Path, required=True)
    args = parser.parse_args(argv)
    ids = args.ids.read_text().split()
    found: list[Statement] = []
    for path in args.files:
        data = yamlfile.load(path)
        for n, raw in enumerate(data.get("statements") or []):
            try:
                found.append(_statement(str(data["file"]), raw, f"{path.name} entry {n + 1}"))
            except InventoryError as exc:
                print(exc)
    bad = [p for p in problems(found, ids, args.docs) if not p.startswith("test ")]
    print("\n".join(bad))
    c = coverage(found, ids)
    print(f"{c.found} statements, {c.testable} testable, {c.covered} covered; {len(bad)} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
