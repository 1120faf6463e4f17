"""ipam.py: default pools, gateways per mode, allocation and release, on the docs' networks and refusals."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from ipaddress import IPv4Network, ip_address, ip_interface, ip_network
from typing import Any

import pytest

from ipvlan_driver.errors import ConfigError, ConflictError, DriverError, IpamError, StateError
from ipvlan_driver.ipam import DEFAULT_POOLS, Ipam, build_pools, default_pool, pools_from_json, pools_to_json
from ipvlan_driver.model import IPAddress, IPNetwork, NetworkSpec, Pool
from ipvlan_driver.options import network_spec, parse_opt_pairs

DOCKER0 = IPv4Network("172.17.0.0/16")  # the docs' host: docker0 holds 172.17.0.1/16
ALL_172 = [IPv4Network(f"172.{n}.0.0/16") for n in range(17, 32)]


def spec(name: str, subnets: list[str], gateways: list[str] | None = None, *opts: str) -> NetworkSpec:
    return network_spec(name, subnets=subnets, gateways=gateways or [], options=parse_opt_pairs(opts))


def nets(*texts: str) -> list[IPNetwork]:
    return [ip_network(t) for t in texts]


def addr(text: str) -> IPAddress:
    return ip_address(text)


# -- default pools -----------------------------------------------------------------------------------


def test_default_pools_are_dockers() -> None:
    assert DEFAULT_POOLS[:15] == tuple(ALL_172)
    assert DEFAULT_POOLS[15:] == tuple(IPv4Network(f"192.168.{16 * n}.0/20") for n in range(16))


@pytest.mark.parametrize(
    ("taken", "expected"),
    [
        pytest.param([], "172.17.0.0/16", id="nothing-taken"),
        pytest.param([DOCKER0], "172.18.0.0/16", id="isolated3-docker0-taken"),
        pytest.param(
            [*nets("192.168.1.0/24", "172.17.0.0/16", "172.18.5.0/24")],
            "172.19.0.0/16",
            id="route-inside-pool",
        ),
        pytest.param(nets("172.16.0.0/12"), "192.168.0.0/20", id="supernet-route"),
        pytest.param(ALL_172, "192.168.0.0/20", id="all-172-taken"),
        pytest.param([*ALL_172, *nets("192.168.1.0/24")], "192.168.16.0/20", id="all-172-and-host-lan"),
        pytest.param(nets("0.0.0.0/0"), "172.17.0.0/16", id="default-route-ignored"),
        pytest.param(nets("::/0", "2001:db8::/32"), "172.17.0.0/16", id="ipv6-ignored"),
        pytest.param(nets("172.17.0.1/32"), "172.18.0.0/16", id="host-route"),
    ],
)
def test_default_pool(taken: list[IPNetwork], expected: str) -> None:
    assert default_pool(iter(taken)) == IPv4Network(expected)


def test_default_pool_exhausted() -> None:
    with pytest.raises(IpamError) as exc:
        default_pool(nets("172.16.0.0/12", "192.168.0.0/16"))
    assert str(exc.value) == (
        "no default address pool left: 172.17.0.0/16 to 192.168.240.0/20 all overlap networks in use"
    )


# -- build_pools -------------------------------------------------------------------------------------


def pool(subnet: str, gateway: str | None, reserved: tuple[str, ...] = ()) -> Pool:
    return Pool(
        subnet=ip_network(subnet),
        gateway=None if gateway is None else ip_address(gateway),
        reserved=[ip_address(r) for r in reserved],
    )


@pytest.mark.parametrize(
    ("network", "default_v4", "expected"),
    [
        pytest.param(
            spec("db_net", ["192.168.1.0/24"], ["192.168.1.1"], "parent=eth0"),
            None,
            [pool("192.168.1.0/24", "192.168.1.1")],
            id="db_net-explicit-gateway",
        ),
        pytest.param(
            spec("db_net_ipv", ["192.168.1.0/24"], None, "parent=eth0"),
            None,
            [pool("192.168.1.0/24", "192.168.1.1")],
            id="db_net_ipv-default-gateway",
        ),
        pytest.param(
            spec("ipvlan114", ["192.168.114.0/24", "192.168.116.0/24"], ["192.168.116.254", "192.168.114.254"]),
            None,
            [pool("192.168.114.0/24", "192.168.114.254"), pool("192.168.116.0/24", "192.168.116.254")],
            id="ipvlan114-gateways-matched-to-subnets",
        ),
        pytest.param(
            spec("isolated3", []),
            IPv4Network("172.18.0.0/16"),
            [pool("172.18.0.0/16", "172.18.0.1")],
            id="isolated3-default-pool",
        ),
        pytest.param(
            spec("v6ipvlan139", ["2001:db8:abc2::/64"], ["2001:db8:abc2::22"], "parent=eth0.139"),
            IPv4Network("172.18.0.0/16"),
            [pool("2001:db8:abc2::/64", "2001:db8:abc2::22"), pool("172.18.0.0/16", "172.18.0.1")],
            id="v6ipvlan139-gets-default-v4",
        ),
        pytest.param(
            spec("ipnet210", ["192.168.214.0/24", "10.1.214.0/24"], None, "ipvlan_mode=l3"),
            IPv4Network("172.18.0.0/16"),  # ignored: the spec has IPv4 subnets
            [
                pool("192.168.214.0/24", None, ("192.168.214.1",)),
                pool("10.1.214.0/24", None, ("10.1.214.1",)),
            ],
            id="ipnet210-l3-no-gateway-first-reserved",
        ),
        pytest.param(
            spec("n", ["192.168.214.0/24"], ["192.168.214.254"], "ipvlan_mode=l3s"),
            None,
            [pool("192.168.214.0/24", None, ("192.168.214.1",))],
            id="l3s-explicit-gateway-ignored",
        ),
        pytest.param(
            spec(
                "ipnet110",
                ["192.168.110.0/24", "192.168.112.0/24", "2001:db8:abc6::/64"],
                None,
                "ipvlan_mode=l3",
            ),
            None,
            [
                pool("192.168.110.0/24", None, ("192.168.110.1",)),
                pool("192.168.112.0/24", None, ("192.168.112.1",)),
                pool("2001:db8:abc6::/64", None, ("2001:db8:abc6::1",)),
            ],
            id="ipnet110-l3-dual-stack",
        ),
    ],
)
def test_build_pools(network: NetworkSpec, default_v4: IPv4Network | None, expected: list[Pool]) -> None:
    assert build_pools(network, default_v4) == expected


@pytest.mark.parametrize(
    ("network", "error", "message"),
    [
        pytest.param(
            spec("v6", ["2001:db8::/64"]),
            IpamError,
            "network 'v6' has no IPv4 subnet and no default IPv4 pool is free",
            id="v6-only-without-default",
        ),
        pytest.param(
            NetworkSpec("n", subnets=(ip_network("10.0.0.0/24"),), gateways=(ip_address("10.0.1.1"),)),
            ConfigError,
            "gateway 10.0.1.1 is outside every subnet (10.0.0.0/24)",
            id="unvalidated-gateway-outside",
        ),
        pytest.param(
            NetworkSpec("n", subnets=(ip_network("10.0.0.0/31"),)),
            ConfigError,
            "invalid subnet 10.0.0.0/31: it has no address for a container",
            id="unvalidated-tiny-subnet",
        ),
    ],
)
def test_build_pools_refusals(network: NetworkSpec, error: type[DriverError], message: str) -> None:
    with pytest.raises(error) as exc:
        build_pools(network, None)
    assert str(exc.value) == message


# -- the docs' networks, container by container --------------------------------------------------------


@dataclass
class Run:
    """One `docker run` on a network: who, which family, which --ip/--ip6, and the address it must get."""

    owner: str
    family: int
    requested: str | None
    expected: str


@dataclass
class Scenario:
    network: NetworkSpec
    runs: list[Run]
    default_v4: IPv4Network | None = None
    release: list[str] = field(default_factory=list)  # owners removed after the runs


SCENARIOS = [
    pytest.param(
        Scenario(
            spec("db_net", ["192.168.1.0/24"], ["192.168.1.1"], "parent=eth0"),
            [Run("c1", 4, None, "192.168.1.2/24"), Run("c2", 4, None, "192.168.1.3/24")],
        ),
        id="db_net-first-container-dot2",
    ),
    pytest.param(
        Scenario(
            spec("ipvlan30", ["192.168.30.0/24"], ["192.168.30.1"], "parent=eth0.30"),
            [Run("ivlan_test3", 4, None, "192.168.30.2/24")],
        ),
        id="ipvlan30-src-dot2",
    ),
    pytest.param(
        Scenario(
            spec("ipvlan114", ["192.168.114.0/24", "192.168.116.0/24"], ["192.168.114.254", "192.168.116.254"]),
            [
                Run("a", 4, "192.168.114.10", "192.168.114.10/24"),
                Run("b", 4, "192.168.114.11", "192.168.114.11/24"),
            ],
        ),
        id="ipvlan114-static",
    ),
    pytest.param(
        Scenario(
            spec("v6ipvlan139", ["2001:db8:abc2::/64"], ["2001:db8:abc2::22"], "parent=eth0.139"),
            [
                Run("first", 4, None, "172.18.0.2/16"),
                Run("first", 6, None, "2001:db8:abc2::1/64"),
                Run("second", 4, None, "172.18.0.3/16"),
                Run("second", 6, None, "2001:db8:abc2::2/64"),
                Run("third", 4, None, "172.18.0.4/16"),
                Run("third", 6, "2001:db8:abc2::51", "2001:db8:abc2::51/64"),
            ],
            default_v4=IPv4Network("172.18.0.0/16"),
        ),
        id="v6ipvlan139-gateway-22-first-is-1",
    ),
    pytest.param(
        Scenario(
            spec(
                "ipvlan140",
                ["192.168.140.0/24", "192.168.142.0/24", "2001:db8:abc9::/64"],
                ["192.168.140.1", "192.168.142.1", "2001:db8:abc9::22"],
                "parent=eth0.140",
            ),
            [
                Run("c1", 4, None, "192.168.140.2/24"),
                Run("c1", 6, None, "2001:db8:abc9::1/64"),
                Run("c2", 4, "192.168.140.10", "192.168.140.10/24"),
                Run("c3", 4, "192.168.142.7", "192.168.142.7/24"),
            ],
        ),
        id="ipvlan140-dual-stack",
    ),
    pytest.param(
        Scenario(
            spec("ipnet210", ["192.168.214.0/24", "10.1.214.0/24"], None, "ipvlan_mode=l3"),
            [
                Run("dyn", 4, None, "192.168.214.2/24"),
                Run("c214", 4, "192.168.214.10", "192.168.214.10/24"),
                Run("c10", 4, "10.1.214.10", "10.1.214.10/24"),
                Run("p1", 4, "192.168.214.9", "192.168.214.9/24"),
                Run("p2", 4, "10.1.214.9", "10.1.214.9/24"),
                Run("dyn2", 4, None, "192.168.214.3/24"),
            ],
        ),
        id="ipnet210-l3-first-dynamic-dot2-static-dot10",
    ),
    pytest.param(
        Scenario(
            spec(
                "ipnet110",
                ["192.168.110.0/24", "192.168.112.0/24", "2001:db8:abc6::/64"],
                None,
                "ipvlan_mode=l3",
            ),
            [
                Run("c1", 4, None, "192.168.110.2/24"),
                Run("c1", 6, None, "2001:db8:abc6::2/64"),
                Run("c2", 4, None, "192.168.110.3/24"),
                Run("c2", 6, "2001:db8:abc6::10", "2001:db8:abc6::10/64"),
                Run("c3", 4, "192.168.112.50", "192.168.112.50/24"),
                Run("c4", 6, "2001:db8:abc6::50", "2001:db8:abc6::50/64"),
            ],
        ),
        id="ipnet110-l3-dual-stack",
    ),
    pytest.param(
        Scenario(
            spec("small", ["10.0.0.0/30", "10.0.1.0/30"]),
            [Run("a", 4, None, "10.0.0.2/30"), Run("b", 4, None, "10.0.1.2/30")],
        ),
        id="full-pool-spills-to-next",
    ),
    pytest.param(
        Scenario(
            spec("db_net", ["192.168.1.0/24"]),
            [
                Run("a", 4, None, "192.168.1.2/24"),
                Run("b", 4, "192.168.1.3", "192.168.1.3/24"),
                Run("c", 4, None, "192.168.1.4/24"),
                Run("d", 4, "192.168.1.254", "192.168.1.254/24"),
            ],
        ),
        id="dynamic-skips-static",
    ),
]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_doc_allocations(scenario: Scenario) -> None:
    pools = build_pools(scenario.network, scenario.default_v4)
    ipam = Ipam(pools)
    for run in scenario.runs:
        requested = None if run.requested is None else ip_address(run.requested)
        assert ipam.allocate(run.owner, run.family, requested) == ip_interface(run.expected), run
    for run in scenario.runs:
        assert ipam.owner_of(ip_interface(run.expected).ip) == run.owner
    held = {str(ip_interface(r.expected).ip): r.owner for r in scenario.runs}
    assert {k: v for p in pools for k, v in p.allocated.items()} == held


# -- refusals -----------------------------------------------------------------------------------------


@pytest.fixture
def db_net() -> Ipam:
    """db_net plus a v6 subnet, with container 'x' on 192.168.1.5."""
    ipam = Ipam(build_pools(spec("db_net", ["192.168.1.0/24", "2001:db8:1::/64"], ["2001:db8:1::22"]), None))
    ipam.allocate("x", 4, ip_address("192.168.1.5"))
    return ipam


@pytest.fixture
def ipnet210() -> Ipam:
    return Ipam(build_pools(spec("ipnet210", ["192.168.214.0/24", "10.1.214.0/24"], None, "ipvlan_mode=l3"), None))


@pytest.mark.parametrize(
    ("owner", "family", "requested", "error", "message"),
    [
        pytest.param(
            "c",
            4,
            "10.9.9.9",
            IpamError,
            "address 10.9.9.9 is outside every IPv4 subnet of this network (192.168.1.0/24)",
            id="outside-subnets",
        ),
        pytest.param(
            "c",
            6,
            "2001:db8:abc2::51",
            IpamError,
            "address 2001:db8:abc2::51 is outside every IPv6 subnet of this network (2001:db8:1::/64)",
            id="ipvlan140-ip6-from-other-network",
        ),
        pytest.param(
            "c",
            4,
            "192.168.1.0",
            IpamError,
            "address 192.168.1.0 is the network address of 192.168.1.0/24",
            id="network-address",
        ),
        pytest.param(
            "c",
            6,
            "2001:db8:1::",
            IpamError,
            "address 2001:db8:1:: is the network address of 2001:db8:1::/64",
            id="v6-network-address",
        ),
        pytest.param(
            "c",
            4,
            "192.168.1.255",
            IpamError,
            "address 192.168.1.255 is the broadcast address of 192.168.1.0/24",
            id="broadcast",
        ),
        pytest.param(
            "c",
            4,
            "192.168.1.1",
            IpamError,
            "address 192.168.1.1 is the gateway of 192.168.1.0/24",
            id="gateway",
        ),
        pytest.param(
            "c",
            6,
            "2001:db8:1::22",
            IpamError,
            "address 2001:db8:1::22 is the gateway of 2001:db8:1::/64",
            id="v6-gateway",
        ),
        pytest.param(
            "c",
            4,
            "192.168.1.5",
            ConflictError,
            "address 192.168.1.5 is already in use by container 'x'",
            id="in-use",
        ),
        pytest.param(
            "x",
            4,
            None,
            ConflictError,
            "container 'x' already has address 192.168.1.5 in this network",
            id="owner-already-has-v4",
        ),
        pytest.param(
            "c",
            4,
            "2001:db8:1::5",
            IpamError,
            "address 2001:db8:1::5 is not an IPv4 address",
            id="wrong-family",
        ),
        pytest.param("c", 5, None, IpamError, "address family must be 4 or 6, not 5", id="bad-family"),
        pytest.param(
            "", 4, None, IpamError, "cannot allocate an address for a container without a name", id="no-owner"
        ),
    ],
)
def test_allocate_refusals(
    db_net: Ipam, owner: str, family: int, requested: str | None, error: type[DriverError], message: str
) -> None:
    before = pools_to_json(db_net.pools)
    with pytest.raises(error) as exc:
        db_net.allocate(owner, family, None if requested is None else ip_address(requested))
    assert type(exc.value) is error
    assert str(exc.value) == message
    assert pools_to_json(db_net.pools) == before  # a refusal changes nothing


def test_l3_first_address_reserved(ipnet210: Ipam) -> None:
    with pytest.raises(IpamError) as exc:
        ipnet210.allocate("c", 4, ip_address("10.1.214.1"))
    assert str(exc.value) == "address 10.1.214.1 is reserved in 10.1.214.0/24"


def test_no_subnet_of_family() -> None:
    ipam = Ipam(build_pools(spec("db_net", ["192.168.1.0/24"]), None))
    with pytest.raises(IpamError) as exc:
        ipam.allocate("c", 6)
    assert str(exc.value) == "the network has no IPv6 subnet"
    with pytest.raises(IpamError) as exc:
        ipam.allocate("c", 6, ip_address("2001:db8::5"))
    assert str(exc.value) == "address 2001:db8::5 is outside the network: it has no IPv6 subnet"


def test_exhausted() -> None:
    ipam = Ipam(build_pools(spec("small", ["10.0.0.0/30", "10.0.1.0/30"]), None))
    ipam.allocate("a", 4)
    ipam.allocate("b", 4)
    with pytest.raises(IpamError) as exc:
        ipam.allocate("c", 4)
    assert str(exc.value) == "no free IPv4 address left in 10.0.0.0/30, 10.0.1.0/30"


# -- release ----------------------------------------------------------------------------------------


def test_release_then_same_static_ip6_works() -> None:
    """The docs' bug: re-using a removed container's --ip6 gave "Address already in use"."""
    ipam = Ipam(build_pools(spec("ipnet110", ["192.168.110.0/24", "2001:db8:abc6::/64"], None, "ipvlan_mode=l3"), None))
    ip6 = ip_address("2001:db8:abc6::10")
    ipam.allocate("c1", 4)
    ipam.allocate("c1", 6, ip6)
    assert ipam.release("c1") == [ip_address("192.168.110.2"), ip6]
    assert ipam.owner_of(ip6) is None
    assert ipam.allocate("c2", 6, ip6) == ip_interface("2001:db8:abc6::10/64")
    assert ipam.owner_of(ip6) == "c2"


def test_release_frees_for_dynamic_and_same_owner() -> None:
    ipam = Ipam(build_pools(spec("db_net", ["192.168.1.0/24"]), None))
    for name in "abcd":
        ipam.allocate(name, 4)  # .2 .3 .4 .5
    assert ipam.release("b") == [ip_address("192.168.1.3")]
    assert ipam.release("b") == []  # releasing what is gone is success
    assert ipam.release("never-there") == []
    assert ipam.allocate("e", 4) == ip_interface("192.168.1.3/24")
    assert ipam.allocate("f", 4) == ip_interface("192.168.1.6/24")
    ipam.release("a")
    assert ipam.allocate("a", 4) == ip_interface("192.168.1.2/24")


def test_owner_of_unknown() -> None:
    ipam = Ipam(build_pools(spec("db_net", ["192.168.1.0/24"]), None))
    assert ipam.owner_of(ip_address("192.168.1.2")) is None
    assert ipam.owner_of(ip_address("10.0.0.1")) is None
    assert ipam.owner_of(ip_address("2001:db8::1")) is None


@pytest.mark.parametrize(
    ("subnet", "first", "last"),
    [
        pytest.param("10.0.0.0/8", "10.0.0.2/8", "10.0.39.17/8", id="v4-slash8"),
        pytest.param("2001:db8::/64", "2001:db8::2/64", "2001:db8::2711/64", id="v6-slash64"),
    ],
)
def test_large_subnet_is_never_enumerated(subnet: str, first: str, last: str) -> None:
    """10k allocations in a /8 and a /64: each must find the lowest gap without walking the subnet."""
    ipam = Ipam(build_pools(spec("big", [subnet]), IPv4Network("172.18.0.0/16")))
    family = ip_network(subnet).version
    got = [ipam.allocate(f"c{i}", family) for i in range(10_000)]
    assert got[0] == ip_interface(first)
    assert got[-1] == ip_interface(last)
    for i in range(0, 10_000, 2):
        ipam.release(f"c{i}")
    assert ipam.allocate("again", family) == ip_interface(first)
    # a hole deep inside the run is found too
    ipam2 = Ipam(ipam.pools)
    assert ipam2.allocate("next", family) == got[2]


# -- persistence ------------------------------------------------------------------------------------


def test_json_round_trip() -> None:
    pools = build_pools(
        spec("ipnet110", ["192.168.110.0/24", "192.168.112.0/24", "2001:db8:abc6::/64"], None, "ipvlan_mode=l3"),
        None,
    )
    ipam = Ipam(pools)
    ipam.allocate("c1", 4)
    ipam.allocate("c1", 6, ip_address("2001:db8:abc6::10"))
    ipam.allocate("c2", 4, ip_address("192.168.112.50"))
    data = json.loads(json.dumps(pools_to_json(pools)))
    assert data[2] == {
        "subnet": "2001:db8:abc6::/64",
        "gateway": None,
        "reserved": ["2001:db8:abc6::1"],
        "allocated": {"2001:db8:abc6::10": "c1"},
    }
    loaded = pools_from_json(data)
    assert loaded == pools
    assert pools_to_json(loaded) == data
    # the reloaded state carries on where it left off
    again = Ipam(loaded)
    assert again.owner_of(ip_address("192.168.112.50")) == "c2"
    assert again.allocate("c3", 4) == ip_interface("192.168.110.3/24")
    assert again.release("c1") == [ip_address("192.168.110.2"), ip_address("2001:db8:abc6::10")]


def test_json_round_trip_l2_gateway() -> None:
    pools = build_pools(spec("db_net", ["192.168.1.0/24"], ["192.168.1.1"]), None)
    assert pools_to_json(pools) == [
        {"subnet": "192.168.1.0/24", "gateway": "192.168.1.1", "reserved": [], "allocated": {}}
    ]
    assert pools_from_json(pools_to_json(pools)) == pools


def _pool_json(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"subnet": "10.0.0.0/24", "gateway": "10.0.0.1", "reserved": [], "allocated": {}}
    base.update(over)
    return base


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param("nope", "pools: expected a list", id="not-a-list"),
        pytest.param([1], "pool 0: expected an object", id="not-an-object"),
        pytest.param([_pool_json(subnet=None)], "pool 0: 'subnet' must be a string", id="no-subnet"),
        pytest.param(
            [_pool_json(subnet="10.0.0.1/24")],
            "pool 0: bad subnet '10.0.0.1/24': 10.0.0.1/24 has host bits set",
            id="subnet-host-bits",
        ),
        pytest.param(
            [_pool_json(gateway=1)],
            "pool 0 (10.0.0.0/24): 'gateway' must be a string or null",
            id="gateway-type",
        ),
        pytest.param(
            [_pool_json(gateway="10.0.1.1")],
            "pool 0 (10.0.0.0/24): gateway 10.0.1.1 is not a usable address of 10.0.0.0/24",
            id="gateway-outside",
        ),
        pytest.param(
            [_pool_json(reserved="10.0.0.2")],
            "pool 0 (10.0.0.0/24): 'reserved' must be a list of strings",
            id="reserved-type",
        ),
        pytest.param(
            [_pool_json(allocated={"10.0.0.2": 3})],
            "pool 0 (10.0.0.0/24): 'allocated' must map address strings to container names",
            id="allocated-type",
        ),
        pytest.param(
            [_pool_json(allocated={"10.0.0.1": "a"})],
            "pool 0 (10.0.0.0/24): allocated address 10.0.0.1 is claimed twice",
            id="allocated-gateway",
        ),
        pytest.param(
            [_pool_json(allocated={"10.0.0.255": "a"})],
            "pool 0 (10.0.0.0/24): allocated address 10.0.0.255 is not a usable address of 10.0.0.0/24",
            id="allocated-broadcast",
        ),
        pytest.param(
            [_pool_json(allocated={"x": "a"})],
            "pool 0 (10.0.0.0/24): 'x' is not an IP address",
            id="allocated-garbage",
        ),
        pytest.param(
            [_pool_json(subnet="2001:db8::/64", gateway=None, allocated={"2001:db8:0::5": "a"})],
            "pool 0 (2001:db8::/64): allocated address '2001:db8:0::5' is not written as '2001:db8::5'",
            id="allocated-not-canonical",
        ),
        pytest.param(
            [_pool_json(allocated={"10.0.0.2": ""})],
            "pool 0 (10.0.0.0/24): allocated address 10.0.0.2 has no owner",
            id="allocated-no-owner",
        ),
    ],
)
def test_pools_from_json_refusals(data: Any, message: str) -> None:
    with pytest.raises(StateError) as exc:
        pools_from_json(data)
    assert str(exc.value) == message


def test_ipam_refuses_overlapping_pools() -> None:
    with pytest.raises(StateError, match=r"pools 10.0.0.0/16 and 10.0.1.0/24 overlap"):
        Ipam([pool("10.0.0.0/16", None), pool("10.0.1.0/24", None)])
