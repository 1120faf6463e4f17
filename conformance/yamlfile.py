"""The suite's YAML reader: libyaml's safe loader when PyYAML has it (several times faster than the pure-Python
one, which mattered: every pytest run parses all the fixtures while collecting, and under emulation that
was seconds per run), the pure-Python safe loader otherwise. Same documents, same results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=LOADER)
