"""ci/ is scripts, not a package: the tests load ci/vm.py from its file, once per session."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_vm() -> ModuleType:
    if "ci_vm" not in sys.modules:
        spec = importlib.util.spec_from_file_location("ci_vm", Path(__file__).parents[1] / "ci" / "vm.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["ci_vm"] = module
        spec.loader.exec_module(module)
    return sys.modules["ci_vm"]


def load_engines() -> ModuleType:
    """ci/engines.py imports `vm` as the scripts do (ci/ first on their path)."""
    sys.modules.setdefault("vm", load_vm())
    if "ci_engines" not in sys.modules:
        spec = importlib.util.spec_from_file_location("ci_engines", Path(__file__).parents[1] / "ci" / "engines.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["ci_engines"] = module
        spec.loader.exec_module(module)
    return sys.modules["ci_engines"]
