"""Run by tests/test_wheel.py under some interpreter: collect with pytest, print what was loaded from where.

`python wheel_probe.py FORBIDDEN ALLOWED -- PYTEST_ARGS...` prints one JSON line: the count of collected
tests, where conformance was imported from, how conformance.plugin and conformance.options were loaded
(rewritten, registered how many times), and every file opened under FORBIDDEN but not under ALLOWED.
Kept free of project imports: it must not itself pull anything from the source tree.
"""

from __future__ import annotations

import json
import sys
from typing import Any

forbidden, allowed = sys.argv[1], sys.argv[2]
pytest_args = sys.argv[sys.argv.index("--") + 1 :]
opened: list[str] = []


def audit(event: str, args: tuple[Any, ...]) -> None:
    # `open` covers open(), Path.read_text() and the import system's reads of source and bytecode
    if event == "open" and isinstance(args[0], str):
        path = args[0]
        if path.startswith(forbidden) and not path.startswith(allowed):
            opened.append(path)


sys.addaudithook(audit)

import pytest  # noqa: E402  (after the hook: pytest's own start-up is watched too)
from _pytest.assertion.rewrite import AssertionRewritingHook  # noqa: E402

seen: dict[str, Any] = {}


class Recorder:
    @staticmethod
    def pytest_collection_finish(session: pytest.Session) -> None:
        plugins = session.config.pluginmanager.get_plugins()
        for name in ("conformance.plugin", "conformance.options"):
            seen[name] = sum(getattr(p, "__name__", None) == name for p in plugins)
        seen["collected"] = len(session.items)


status = pytest.main(pytest_args, plugins=[Recorder()])
conformance = sys.modules.get("conformance")
machinery = sys.modules.get("conformance.plugin")
seen.update(
    status=int(status),
    conformance=getattr(conformance, "__file__", None),
    fixtures=str(sys.modules["conformance.data"].FIXTURES) if "conformance.data" in sys.modules else None,
    rewritten=isinstance(getattr(machinery, "__loader__", None), AssertionRewritingHook) if machinery else None,
    editable_finder=any("__editable__" in name for name in sys.modules),
    opened=sorted(set(opened)),
)
print("PROBE " + json.dumps(seen))
