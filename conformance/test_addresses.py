"""Addresses inside containers, v4 and v6, as the docs print them (SLAAC and link-local left out)."""

from __future__ import annotations

import pytest

from .cases import Case, address_cases, params
from .checks import global_addresses
from .deploy import Deployment


@pytest.mark.parametrize("case", params(address_cases()))
def test_addresses(case: Case, deployment: Deployment) -> None:
    name = case.data["container"]
    if case.behaviour.endswith("-ipv6-nodad"):
        seen = global_addresses(deployment.container(name).netns)
        v6 = {a: nodad for a, nodad in seen.items() if ":" in a}
        assert v6, f"{name}: no global IPv6 address on eth0 (saw {sorted(seen)})"
        assert all(v6.values()), f"{name}: IPv6 addresses must be added with nodad (libnetwork does): {v6}"
        return
    expected = sorted(str(a) for a in case.data["expect"])
    found = sorted(global_addresses(deployment.container(name).netns))
    assert found == expected, f"{name} eth0: expected {expected}, saw {found}"
