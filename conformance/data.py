"""Where the suite's data files are: `fixtures/` of a checkout, or the copy an installed wheel carries."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def fixtures_dir() -> Path:
    """The fixtures the suite reads: a wheel ships them as the package data `conformance/fixtures/`
    (pyproject maps the top-level directory there); a checkout has them beside the package."""
    packaged = files("conformance") / "fixtures"
    # a filesystem install gives a real Path (the suite is not importable from a zip: it builds namespaces)
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "fixtures"


FIXTURES = fixtures_dir()
