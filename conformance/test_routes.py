"""Routing tables inside containers: l2 `default via GW`, l3/l3s `default dev eth0`, v4 and v6."""

from __future__ import annotations

import pytest

from .cases import Case, params, route_cases
from .checks import routes
from .deploy import Deployment


@pytest.mark.parametrize("case", params(route_cases()))
def test_routes(case: Case, deployment: Deployment) -> None:
    name, family = case.data["container"], case.data["family"]
    seen = routes(deployment.container(name).netns, family)
    expected = sorted(case.data["expect"])
    cmd = "ip route" if family == 4 else "ip -6 route"
    assert seen == expected, f"{name} `{cmd}`: expected {expected}, saw {seen}"
