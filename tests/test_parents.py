"""parents.py: which link each documented network hangs off, planned against a fake set of host links."""

from __future__ import annotations

import pytest

from ipvlan_driver.errors import ConfigError, DriverError, NotFoundError
from ipvlan_driver.model import NetworkSpec, ParentPlan
from ipvlan_driver.parents import dummy_name, plan_parent

NETWORK_ID = "0123456789abcdef" * 4
DUMMY = "di-0123456789ab"
# What the docs' host has: eth0, a hand-made eth0.40 and "foo" (ipvlan40), a bond.
HOST_LINKS = frozenset({"eth0", "eth0.40", "foo", "bond0"})


class FakeLinks:
    """link_exists over a fixed set of names, remembering what was asked."""

    def __init__(self, names: frozenset[str] = HOST_LINKS) -> None:
        self.names = names
        self.asked: list[str] = []

    def __call__(self, name: str) -> bool:
        self.asked.append(name)
        return name in self.names


def test_dummy_name_is_docker_short_id() -> None:
    assert dummy_name(NETWORK_ID) == DUMMY
    assert len(DUMMY) <= 15


def test_dummy_name_short_id() -> None:
    assert dummy_name("abc") == "di-abc"


def test_dummy_name_needs_an_id() -> None:
    with pytest.raises(ConfigError, match="network id must not be empty"):
        dummy_name("")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(NetworkSpec("isolated1"), ParentPlan("dummy", DUMMY), id="isolated1-no-parent-dummy"),
        pytest.param(
            NetworkSpec("isolated2", internal=True), ParentPlan("dummy", DUMMY), id="isolated2-internal-dummy"
        ),
        pytest.param(
            NetworkSpec("n", parent="eth0", internal=True),
            ParentPlan("dummy", DUMMY),
            id="internal-overrides-parent",
        ),
        pytest.param(NetworkSpec("db_net", parent="eth0"), ParentPlan("existing", "eth0"), id="db_net-existing"),
        pytest.param(
            NetworkSpec("ipvlan40", parent="eth0.40"),
            ParentPlan("existing", "eth0.40"),
            id="ipvlan40-manual-vlan-existing",
        ),
        pytest.param(NetworkSpec("ipvlan40", parent="foo"), ParentPlan("existing", "foo"), id="ipvlan40-foo-existing"),
        pytest.param(
            NetworkSpec("ipvlan20", parent="eth0.20"),
            ParentPlan("vlan", "eth0.20", link="eth0", vlan_id=20),
            id="ipvlan20-vlan-created",
        ),
        pytest.param(
            NetworkSpec("n", parent="bond0.4094"),
            ParentPlan("vlan", "bond0.4094", link="bond0", vlan_id=4094),
            id="vlan-4094",
        ),
        pytest.param(
            NetworkSpec("n", parent="eth0.40.7"),
            ParentPlan("vlan", "eth0.40.7", link="eth0.40", vlan_id=7),
            id="vlan-on-vlan",
        ),
    ],
)
def test_plan_parent(spec: NetworkSpec, expected: ParentPlan) -> None:
    assert plan_parent(spec, NETWORK_ID, FakeLinks()) == expected


def test_dummy_plan_does_not_look_at_links() -> None:
    links = FakeLinks()
    plan_parent(NetworkSpec("n"), NETWORK_ID, links)
    assert links.asked == []


def test_existing_links_are_never_driver_owned() -> None:
    plan = plan_parent(NetworkSpec("n", parent="eth0.40"), NETWORK_ID, FakeLinks())
    assert not plan.driver_owned


@pytest.mark.parametrize("parent", [pytest.param("eth0.20", id="vlan"), pytest.param(None, id="dummy")])
def test_created_links_are_driver_owned(parent: str | None) -> None:
    assert plan_parent(NetworkSpec("n", parent=parent), NETWORK_ID, FakeLinks()).driver_owned


@pytest.mark.parametrize(
    ("parent", "error", "message"),
    [
        pytest.param("lo", ConfigError, "loopback interface is not a valid ipvlan parent", id="lo"),
        pytest.param(
            "lo.10",
            ConfigError,
            "invalid parent 'lo.10': loopback interface is not a valid ipvlan parent",
            id="lo-vlan",
        ),
        pytest.param("eth0.0", ConfigError, "invalid parent 'eth0.0': vlan id must be 1-4094", id="vlan-0"),
        pytest.param("eth0.4095", ConfigError, "invalid parent 'eth0.4095': vlan id must be 1-4094", id="vlan-4095"),
        pytest.param(
            "eth9.20",
            NotFoundError,
            "parent interface 'eth9.20' does not exist, and neither does its base interface 'eth9'",
            id="vlan-base-missing",
        ),
        pytest.param("foo2", NotFoundError, "parent interface 'foo2' does not exist", id="missing"),
        pytest.param("eth0.x", NotFoundError, "parent interface 'eth0.x' does not exist", id="missing-dotted"),
    ],
)
def test_plan_parent_refusals(parent: str, error: type[DriverError], message: str) -> None:
    with pytest.raises(error) as exc:
        plan_parent(NetworkSpec("n", parent=parent), NETWORK_ID, FakeLinks())
    assert type(exc.value) is error
    assert str(exc.value) == message


def test_lo_refused_even_if_internal() -> None:
    with pytest.raises(ConfigError, match="loopback"):
        plan_parent(NetworkSpec("n", parent="lo", internal=True), NETWORK_ID, FakeLinks())
