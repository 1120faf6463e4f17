"""Kernel minimums as data: a kernel too old for ipvlan is refused, one too old for a capability makes the
behaviours that require it unsupported (not failed). Kernel releases are injected: no VM needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance import kernel
from conformance.examples import load_examples

MINIMUMS = kernel.load()
DOCS = Path(__file__).resolve().parents[2] / "shared" / "docs"


@pytest.mark.parametrize(
    ("release", "refused"),
    [
        ("3.19.0-generic", True),
        ("4.1.52", True),
        ("4.2.0", False),
        ("5.10.0-32-amd64", False),
        ("6.12.95+deb12", False),
    ],
)
def test_ipvlan_below_the_docs_minimum_is_refused_with_the_docs_reason(release: str, refused: bool) -> None:
    message = MINIMUMS.refusal(release)
    assert (message is not None) == refused
    if message:
        assert release in message and "Linux 4.2" in message and "buggy" in message


@pytest.mark.parametrize(
    ("release", "lacks"),
    [
        ("4.4.0-210-generic", {"l3s", "flag"}),  # Ubuntu 16.04
        ("4.9.0", {"flag"}),
        ("4.14.336", {"flag"}),
        ("4.15.0-generic", set()),
        ("6.1.0-57-amd64", set()),
    ],
)
def test_capabilities_a_kernel_is_too_old_for(release: str, lacks: set[str]) -> None:
    assert {m.name for m in MINIMUMS.lacking(release, {"l3s", "flag", "vlan", "ipv6"})} == lacks


def test_the_gate_names_the_kernel_the_capability_and_its_minimum() -> None:
    examples = load_examples()
    assert MINIMUMS.gap("4.4.0", examples["db_net"].requires) is None
    gap = MINIMUMS.gap("4.4.0", examples["l3s"].requires)
    assert gap is not None and gap.startswith("unsupported: kernel 4.4.0 lacks l3s (Linux 4.9")
    flag = MINIMUMS.gap("4.14.0", examples["flag-private"].requires)
    assert flag is not None and "flag (Linux 4.15" in flag
    assert MINIMUMS.gap("4.15.0", examples["flag-private"].requires) is None


def test_every_capability_with_a_minimum_is_one_fixtures_require() -> None:
    required = set().union(*(e.requires for e in load_examples().values()))
    assert {m.name for m in MINIMUMS.capabilities} <= required


@pytest.mark.skipif(not DOCS.is_dir(), reason="needs ../shared/docs next to the repository")
def test_the_minimum_quotes_the_docs() -> None:
    line = (DOCS / "ipvlan-driver-v1.13.md").read_text().splitlines()[19]
    assert MINIMUMS.ipvlan.why in line


def test_an_unreadable_release_is_an_error() -> None:
    with pytest.raises(ValueError, match="cannot read a kernel version"):
        kernel.version("linux")
