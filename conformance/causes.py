"""Why a third-party engine deviates from the docs: causes kept as data, matched to the report's cells.

fixtures/engines/causes.yaml names, for each cause, the columns (globs: `docker-*`) and behaviours (globs
of `example-behaviour`) it explains, and the evidence (the engine's code, a release note, a measurement).
The implementation report groups each third-party column's deviations by cause; a deviation no cause
explains is listed as unexplained: a suite bug until shown otherwise.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import yamlfile
from .data import FIXTURES

CAUSES = FIXTURES / "engines" / "causes.yaml"
FIELDS = ("id", "columns", "behaviours", "cause", "evidence")


@dataclass(frozen=True)
class Cause:
    id: str
    columns: tuple[str, ...]
    behaviours: tuple[str, ...]
    cause: str
    evidence: str

    def explains(self, column: str, test_id: str) -> bool:
        return any(fnmatch.fnmatchcase(column, c) for c in self.columns) and any(
            fnmatch.fnmatchcase(test_id, b) for b in self.behaviours
        )


def _cause(raw: Any, where: str) -> Cause:
    if not isinstance(raw, dict) or sorted(raw) != sorted(FIELDS):
        raise ValueError(f"{where}: a cause has exactly the fields {', '.join(FIELDS)}")
    for key in ("columns", "behaviours"):
        if not raw[key] or not all(isinstance(g, str) for g in raw[key]):
            raise ValueError(f"{where}: cause {raw['id']}: {key} is a list of globs")
    return Cause(
        str(raw["id"]), tuple(raw["columns"]), tuple(raw["behaviours"]), str(raw["cause"]), str(raw["evidence"])
    )


def load(path: Path = CAUSES) -> list[Cause]:
    if not path.exists():
        return []
    data = yamlfile.load(path) or {}
    causes = [_cause(raw, str(path)) for raw in data.get("causes", [])]
    seen = [c.id for c in causes]
    dup = {i for i in seen if seen.count(i) > 1}
    if dup:
        raise ValueError(f"{path}: cause ids used twice: {sorted(dup)}")
    return causes


def explain(causes: list[Cause], column: str, test_id: str) -> Cause | None:
    """The first cause that explains this column's deviation (causes are listed most specific first)."""
    return next((c for c in causes if c.explains(column, test_id)), None)
