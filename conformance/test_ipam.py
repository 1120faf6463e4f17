"""IPAM as documented: addresses come back the moment a container is removed (the docs' known
"Address already in use" bug for a re-used --ip6 must not exist), and one network hands out no address twice."""

from __future__ import annotations

import dataclasses

import pytest

from .cases import Case, example_cases, params
from .checks import global_addresses
from .deploy import Deployment, deploy_networks


@pytest.mark.parametrize("case", params(example_cases("addresses-released-on-rm", when=lambda ex: bool(ex.containers))))
def test_addresses_released_on_rm(case: Case, fresh_lab: Deployment) -> None:
    dep = fresh_lab
    deploy_networks(dep)
    req = dep.example.containers[-1].request  # the last one carries the docs' static --ip/--ip6, if any
    first = global_addresses(dep.backend.run(req).netns)
    dep.backend.remove(req.name)
    again = dataclasses.replace(req, name=req.name + "-2")
    second = global_addresses(dep.backend.run(again).netns)
    assert sorted(second) == sorted(first), (
        f"after `rm {req.name}` its addresses {sorted(first)} must be free again; a new container got {sorted(second)}"
    )


@pytest.mark.parametrize(
    "case", params(example_cases("no-duplicate-addresses", when=lambda ex: len(ex.containers) >= 2))
)
def test_no_duplicate_addresses(case: Case, deployment: Deployment) -> None:
    owners: dict[str, str] = {}
    for name, attached in deployment.attached.items():
        for cidr in global_addresses(attached.netns):
            ip = cidr.split("/")[0]
            assert ip not in owners, f"{ip} is on both {owners[ip]} and {name}"
            owners[ip] = name
