"""The conformance suite run in-process by a project test (pytester): the one argument list every such run
starts with, so each sees this checkout's suite under the project's own pytest configuration."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def suite_args(*extra: str) -> list[str]:
    """The suite's directory, this rootdir and pyproject.toml (filterwarnings = error: an "already imported"
    warning fails the run), no cache; then `extra`."""
    return [
        str(ROOT / "conformance"),
        f"--rootdir={ROOT}",
        "-c",
        str(ROOT / "pyproject.toml"),
        "-p",
        "no:cacheprovider",
        *extra,
    ]
