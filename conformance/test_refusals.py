"""Commands from the docs a correct driver refuses, with a message naming the problem, leaving nothing behind."""

from __future__ import annotations

import pytest

import netnsutil as ns

from .backends.base import BackendRefused
from .cases import Case, params, refusal_cases
from .deploy import deploy_networks
from .examples import parse_network_create, parse_run
from .observe import Observer


@pytest.mark.parametrize("case", params(refusal_cases()))
def test_refusal(case: Case, fresh_lab: object) -> None:
    from .deploy import Deployment

    assert isinstance(fresh_lab, Deployment)
    dep = fresh_lab
    command = case.data["command"]
    is_run = command.split()[1] == "run"
    if is_run:
        deploy_networks(dep)
    with Observer(dep.topo.host) as nl:
        links_before = sorted(link.name for link in nl.links())
    namespaces_before = set(ns.list_names())
    with pytest.raises(BackendRefused) as refused:
        if is_run:
            dep.backend.run(parse_run(command, "refused1"))
        else:
            dep.backend.create_network(parse_network_create(command))
    assert str(case.data["error_contains"]) in str(refused.value), (
        f"`{command}` was refused, but the message does not name {case.data['error_contains']!r}: {refused.value}"
    )
    with Observer(dep.topo.host) as nl:
        assert sorted(link.name for link in nl.links()) == links_before, "a refused command left a link behind"
    assert set(ns.list_names()) == namespaces_before, "a refused command left a namespace behind"
