"""Link lifecycle: `name.vid` parents made and removed, pre-made links and eth0 never touched,
dummy parents for no-parent and --internal networks, one network per parent."""

from __future__ import annotations

import pytest

from .backends.base import BackendRefused, network_refs
from .cases import Case, network_cases, params
from .checks import names_network
from .deploy import Deployment, deploy_containers, deploy_networks, run_setup
from .examples import NetworkRequest
from .observe import Observer


def _links(dep: Deployment) -> dict[str, tuple[str | None, int | None]]:
    with Observer(dep.topo.host) as nl:
        return {link.name: (link.kind, link.vlan_id) for link in nl.links()}


@pytest.mark.parametrize("case", params(network_cases("parent-lifecycle")))
def test_parent_lifecycle(case: Case, fresh_lab: Deployment) -> None:
    dep = fresh_lab
    run_setup(dep)
    before = _links(dep)
    deploy_networks(dep, setup=False)
    deploy_containers(dep)
    during = _links(dep)
    expect = case.data["expect"].parent
    kind, name = expect.kind, str(expect.name)
    added = {n: v for n, v in during.items() if n not in before}
    if kind == "vlan":
        assert added.get(name) == ("vlan", expect.vlan_id), (
            f"`{case.data['network'].name}` should create {name} (802.1q vlan {expect.vlan_id}); new links: {added}"
        )
    elif kind == "dummy":
        assert [k for k, _ in added.values()] == ["dummy"], f"expected one new dummy parent, new links: {added}"
    else:
        assert not added, f"parent {name} exists already: the driver must create no link, but made {added}"
    for container in list(dep.attached):
        dep.backend.remove(container)
    for step in dep.example.networks:
        dep.backend.remove_network(step.request.name)
    after = _links(dep)
    assert after == before, (
        f"after `network rm` the host's links must be as before: gone {sorted(set(before) - set(after))}, "
        f"left behind {sorted(set(after) - set(before))}"
    )


def _with_parent(case: Case) -> bool:
    return bool(case.data["network"].opts.get("parent")) and not case.data["network"].internal


@pytest.mark.parametrize(
    "case", params(c for c in network_cases("second-network-on-parent-refused") if _with_parent(c))
)
def test_second_network_on_parent_refused(case: Case, fresh_lab: Deployment) -> None:
    dep = fresh_lab
    deploy_networks(dep)
    first: NetworkRequest = case.data["network"]
    second = NetworkRequest("second_net", ("10.123.0.0/24",), (), (("parent", first.opts["parent"]),))
    before = _links(dep)
    with pytest.raises(BackendRefused) as refused:
        dep.backend.create_network(second)
        dep.backend.remove_network("second_net")
    assert names_network(str(refused.value), network_refs(dep.backend, first.name)), (
        f"the refusal should name network {first.name}: {refused.value}"
    )
    assert _links(dep) == before, "a refused network create must leave no link behind"
