"""ci/ is scripts, not a package: the tests load ci/vm.py from its file, once per session."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def _load(name: str, filename: str) -> ModuleType:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "ci" / filename)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def load_vm() -> ModuleType:
    return _load("ci_vm", "vm.py")


def load_engines() -> ModuleType:
    """ci/engines.py imports `vm` as the scripts do (ci/ first on their path)."""
    sys.modules.setdefault("vm", load_vm())
    return _load("ci_engines", "engines.py")


def load_kernels() -> ModuleType:
    """ci/kernels.py imports `vm` and `engines` as the scripts do."""
    sys.modules.setdefault("engines", load_engines())
    return _load("ci_kernels", "kernels.py")


def load_allure_html() -> ModuleType:
    """ci/allure_html.py imports `vm` as the scripts do."""
    sys.modules.setdefault("vm", load_vm())
    return _load("ci_allure_html", "allure_html.py")
