"""What a kernel must be for the suite to run at all and for each capability; the data is
fixtures/kernel/minimums.yaml. A behaviour a kernel is too old for is unsupported there, not failed."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from . import yamlfile
from .data import FIXTURES

MINIMUMS = FIXTURES / "kernel" / "minimums.yaml"
Version = tuple[int, int]


@dataclass(frozen=True)
class Minimum:
    name: str  # ipvlan, or a capability fixtures `require` (l3s, flag)
    since: Version
    why: str

    @property
    def label(self) -> str:
        return f"Linux {self.since[0]}.{self.since[1]}"


@dataclass(frozen=True)
class Minimums:
    ipvlan: Minimum
    capabilities: tuple[Minimum, ...]

    def refusal(self, release: str) -> str | None:
        """Why the suite cannot run on this kernel, or None."""
        if version(release) >= self.ipvlan.since:
            return None
        return f"kernel {release} is older than {self.ipvlan.label}, which the docs require: {self.ipvlan.why}"

    def lacking(self, release: str, requires: Iterable[str]) -> list[Minimum]:
        """The required capabilities this kernel is too old for."""
        wanted, have = set(requires), version(release)
        return [m for m in self.capabilities if m.name in wanted and have < m.since]

    def gap(self, release: str, requires: Iterable[str]) -> str | None:
        """The skip reason when this kernel is too old for what an example requires (unsupported, not failed)."""
        lacking = self.lacking(release, requires)
        if not lacking:
            return None
        return f"unsupported: kernel {release} lacks " + ", ".join(f"{m.name} ({m.label}: {m.why})" for m in lacking)


def version(release: str) -> Version:
    """`6.1.0-57-amd64` -> (6, 1); a release that does not start with two numbers is refused."""
    found = re.match(r"(\d+)\.(\d+)", release)
    if found is None:
        raise ValueError(f"cannot read a kernel version from {release!r}")
    return int(found.group(1)), int(found.group(2))


def load(path: Path = MINIMUMS) -> Minimums:
    data = yamlfile.load(path)

    def minimum(name: str, raw: dict[str, str]) -> Minimum:
        return Minimum(name, version(str(raw["since"])), str(raw["why"]))

    return Minimums(
        minimum("ipvlan", data["ipvlan"]),
        tuple(minimum(name, raw) for name, raw in sorted(data["capabilities"].items())),
    )
