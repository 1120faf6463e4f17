"""options.py: `-o` parsing and `network create` validation, on the documented commands and every refusal."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import ip_address, ip_network

import pytest

from ipvlan_driver.errors import ConfigError
from ipvlan_driver.model import Flag, Mode, NetworkSpec
from ipvlan_driver.options import network_spec, parse_opt_pairs

# -- parse_opt_pairs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        pytest.param([], {}, id="none"),
        pytest.param(["parent=eth0"], {"parent": "eth0"}, id="one"),
        pytest.param(["parent=eth0.20", "ipvlan_mode=l2"], {"parent": "eth0.20", "ipvlan_mode": "l2"}, id="two"),
        pytest.param(["parent="], {"parent": ""}, id="empty-value"),
        pytest.param(["k=a=b=c"], {"k": "a=b=c"}, id="value-with-equals"),
    ],
)
def test_parse_opt_pairs(pairs: list[str], expected: dict[str, str]) -> None:
    assert parse_opt_pairs(pairs) == expected


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        pytest.param(["parent"], "invalid option 'parent': expected key=value", id="missing-equals"),
        pytest.param(["=eth0"], "invalid option '=eth0': empty key", id="empty-key"),
        pytest.param(["parent=eth0", "parent=eth1"], "option 'parent' given more than once", id="repeated-key"),
    ],
)
def test_parse_opt_pairs_refusals(pairs: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_opt_pairs(pairs)
    assert str(exc.value) == message


# -- network_spec on the documented commands ---------------------------------------------------------


@dataclass
class Create:
    """One `docker network create` of the docs, as flags."""

    name: str
    subnets: list[str] = field(default_factory=list)
    gateways: list[str] = field(default_factory=list)
    opts: list[str] = field(default_factory=list)
    internal: bool = False
    ipv6: bool = False

    def spec(self) -> NetworkSpec:
        return network_spec(
            self.name,
            subnets=self.subnets,
            gateways=self.gateways,
            options=parse_opt_pairs(self.opts),
            internal=self.internal,
            ipv6=self.ipv6,
        )


def _spec(
    name: str,
    subnets: list[str],
    gateways: list[str],
    *,
    parent: str | None = None,
    mode: Mode = "l2",
    flag: Flag = "bridge",
    internal: bool = False,
    ipv6: bool = False,
) -> NetworkSpec:
    """The NetworkSpec a create must produce, built without going through options.py."""
    return NetworkSpec(
        name=name,
        subnets=tuple(ip_network(s) for s in subnets),
        gateways=tuple(ip_address(g) for g in gateways),
        parent=parent,
        mode=mode,
        flag=flag,
        internal=internal,
        ipv6=ipv6,
    )


DOC_CREATES = [
    pytest.param(
        Create("db_net", ["192.168.1.0/24"], ["192.168.1.1"], ["ipvlan_mode=l2", "parent=eth0"]),
        _spec("db_net", ["192.168.1.0/24"], ["192.168.1.1"], parent="eth0"),
        id="db_net-spec",
    ),
    pytest.param(
        Create("db_net_ipv", ["192.168.1.0/24"], [], ["parent=eth0"]),
        _spec("db_net_ipv", ["192.168.1.0/24"], [], parent="eth0"),
        id="db_net_ipv-spec",
    ),
    pytest.param(
        Create("isolated1", ["192.168.10.0/24"]),
        _spec("isolated1", ["192.168.10.0/24"], []),
        id="isolated1-no-parent",
    ),
    pytest.param(
        Create("isolated2", ["192.168.11.0/24"], internal=True),
        _spec("isolated2", ["192.168.11.0/24"], [], internal=True),
        id="isolated2-internal",
    ),
    pytest.param(Create("isolated3"), _spec("isolated3", [], []), id="isolated3-no-subnet"),
    pytest.param(
        Create("ipvlan20", ["192.168.20.0/24"], ["192.168.20.1"], ["parent=eth0.20"]),
        _spec("ipvlan20", ["192.168.20.0/24"], ["192.168.20.1"], parent="eth0.20"),
        id="ipvlan20-spec",
    ),
    pytest.param(
        Create(
            "ipvlan114",
            ["192.168.114.0/24", "192.168.116.0/24"],
            ["192.168.114.254", "192.168.116.254"],
            ["parent=eth0.114", "ipvlan_mode=l2"],
        ),
        _spec(
            "ipvlan114",
            ["192.168.114.0/24", "192.168.116.0/24"],
            ["192.168.114.254", "192.168.116.254"],
            parent="eth0.114",
        ),
        id="ipvlan114-two-gateways",
    ),
    pytest.param(
        Create("vlan10", ["172.16.80.0/24"], ["172.16.80.1"], ["parent=eth0.10"]),
        _spec("vlan10", ["172.16.80.0/24"], ["172.16.80.1"], parent="eth0.10"),
        id="netops-vlan10-spec",
    ),
    pytest.param(
        Create("ipnet210", ["192.168.214.0/24", "10.1.214.0/24"], [], ["ipvlan_mode=l3"]),
        _spec("ipnet210", ["192.168.214.0/24", "10.1.214.0/24"], [], mode="l3"),
        id="ipnet210-l3-no-parent",
    ),
    pytest.param(
        Create("v6ipvlan139", ["2001:db8:abc2::/64"], ["2001:db8:abc2::22"], ["parent=eth0.139"]),
        _spec("v6ipvlan139", ["2001:db8:abc2::/64"], ["2001:db8:abc2::22"], parent="eth0.139", ipv6=True),
        id="v6ipvlan139-ipv6-implied",
    ),
    pytest.param(
        Create(
            "ipvlan140",
            ["192.168.140.0/24", "192.168.142.0/24", "2001:db8:abc9::/64"],
            ["192.168.140.1", "192.168.142.1", "2001:db8:abc9::22"],
            ["parent=eth0.140", "ipvlan_mode=l2"],
        ),
        _spec(
            "ipvlan140",
            ["192.168.140.0/24", "192.168.142.0/24", "2001:db8:abc9::/64"],
            ["192.168.140.1", "192.168.142.1", "2001:db8:abc9::22"],
            parent="eth0.140",
            ipv6=True,
        ),
        id="ipvlan140-dual-stack",
    ),
    pytest.param(
        Create(
            "ipnet110",
            ["192.168.110.0/24", "192.168.112.0/24", "2001:db8:abc6::/64"],
            [],
            ["parent=eth0", "ipvlan_mode=l3"],
        ),
        _spec(
            "ipnet110",
            ["192.168.110.0/24", "192.168.112.0/24", "2001:db8:abc6::/64"],
            [],
            parent="eth0",
            mode="l3",
            ipv6=True,
        ),
        id="ipnet110-l3-dual-stack",
    ),
    pytest.param(
        Create("ipvlan40", ["192.168.40.0/24"], ["192.168.40.1"], ["parent=foo"]),
        _spec("ipvlan40", ["192.168.40.0/24"], ["192.168.40.1"], parent="foo"),
        id="ipvlan40-any-name-parent",
    ),
]


@pytest.mark.parametrize(("create", "expected"), DOC_CREATES)
def test_doc_creates(create: Create, expected: NetworkSpec) -> None:
    assert create.spec() == expected


@pytest.mark.parametrize(
    ("create", "expected"),
    [
        pytest.param(
            Create("n", opts=["ipvlan_mode=l3s", "ipvlan_flag=private"]),
            _spec("n", [], [], mode="l3s", flag="private"),
            id="l3s-private",
        ),
        pytest.param(Create("n", opts=["ipvlan_flag=vepa"]), _spec("n", [], [], flag="vepa"), id="vepa"),
        pytest.param(Create("n", opts=["parent="]), _spec("n", [], []), id="empty-parent-is-none"),
        pytest.param(
            Create("n", ["2001:db8::/64"], ipv6=True),
            _spec("n", ["2001:db8::/64"], [], ipv6=True),
            id="explicit-ipv6",
        ),
        pytest.param(
            Create("n", ["2001:DB8::/64"], ["2001:DB8::FFFF:FFFF:FFFF:FFFF"]),
            _spec("n", ["2001:db8::/64"], ["2001:db8::ffff:ffff:ffff:ffff"], ipv6=True),
            id="ipv6-upper-case-and-last-address-gateway",
        ),
        pytest.param(
            Create("n", ["10.0.0.0/30", "2001:db8::/126"]),
            _spec("n", ["10.0.0.0/30", "2001:db8::/126"], [], ipv6=True),
            id="smallest-subnets",
        ),
        pytest.param(
            Create("n", ["10.2.0.0/16", "2001:db8::/64", "10.1.0.0/16"], ["2001:db8::9", "10.1.0.9", "10.2.0.9"]),
            _spec(
                "n",
                ["10.2.0.0/16", "2001:db8::/64", "10.1.0.0/16"],
                ["2001:db8::9", "10.1.0.9", "10.2.0.9"],
                ipv6=True,
            ),
            id="order-kept",
        ),
        pytest.param(Create("a" * 64), _spec("a" * 64, [], []), id="name-64-chars"),
        pytest.param(Create("Net_1.a-b"), _spec("Net_1.a-b", [], []), id="name-punctuation"),
        pytest.param(
            Create("n", opts=["parent=eth0.20abc.x"]),
            _spec("n", [], [], parent="eth0.20abc.x"),
            id="odd-parent",
        ),
    ],
)
def test_other_creates(create: Create, expected: NetworkSpec) -> None:
    assert create.spec() == expected


# -- every refusal -----------------------------------------------------------------------------------

REFUSALS = [
    pytest.param(
        Create("netops-vlan30", ["10.1.100.0/16"], ["10.1.100.1"], ["parent=eth0.30"]),
        "invalid subnet 10.1.100.0/16: host bits set; did you mean 10.1.0.0/16?",
        id="netops-vlan30-host-bits",
    ),
    pytest.param(
        # The same NetOps list's VLAN 20 line has the same mistake: a /22 starts at 172.16.48.0.
        Create("netops-vlan20", ["172.16.50.0/22"], ["172.16.50.1"], ["parent=eth0.20"]),
        "invalid subnet 172.16.50.0/22: host bits set; did you mean 172.16.48.0/22?",
        id="netops-vlan20-host-bits",
    ),
    pytest.param(
        Create("n", ["2001:db8::1/64"]),
        "invalid subnet 2001:db8::1/64: host bits set; did you mean 2001:db8::/64?",
        id="ipv6-host-bits",
    ),
    pytest.param(Create("-n"), "invalid network name '-n': only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", id="name-dash"),
    pytest.param(Create(""), "invalid network name '': only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", id="name-empty"),
    pytest.param(
        Create("a b"),
        "invalid network name 'a b': only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
        id="name-space",
    ),
    pytest.param(Create("a" * 65), f"invalid network name '{'a' * 65}': longer than 64 characters", id="name-65"),
    pytest.param(
        Create("n", opts=["macvlan_mode=bridge"]),
        "unknown option 'macvlan_mode': valid options are parent, ipvlan_mode, ipvlan_flag",
        id="unknown-option",
    ),
    pytest.param(
        Create("n", opts=["ipvlan_mode=l4"]),
        "invalid ipvlan_mode 'l4': valid modes are l2, l3, l3s",
        id="mode",
    ),
    pytest.param(
        Create("n", opts=["ipvlan_mode=L2"]),
        "invalid ipvlan_mode 'L2': valid modes are l2, l3, l3s",
        id="mode-case",
    ),
    pytest.param(
        Create("n", opts=["ipvlan_flag=passthru"]),
        "invalid ipvlan_flag 'passthru': valid flags are bridge, private, vepa",
        id="flag",
    ),
    pytest.param(Create("n", opts=["parent=lo"]), "loopback interface is not a valid ipvlan parent", id="parent-lo"),
    pytest.param(
        Create("n", opts=["parent=eth0123456789.20"]),
        "invalid parent 'eth0123456789.20': interface names are at most 15 characters",
        id="parent-too-long",
    ),
    pytest.param(
        Create("n", opts=["parent=a/b"]),
        "invalid parent 'a/b': not a valid interface name",
        id="parent-slash",
    ),
    pytest.param(
        Create("n", opts=["parent=a b"]),
        "invalid parent 'a b': not a valid interface name",
        id="parent-space",
    ),
    pytest.param(
        Create("n", opts=["parent=.."]), "invalid parent '..': not a valid interface name", id="parent-dotdot"
    ),
    pytest.param(
        Create("n", ["10.0.0.0"]),
        "invalid subnet '10.0.0.0': expected CIDR notation like 192.168.1.0/24",
        id="subnet-no-prefix",
    ),
    pytest.param(
        Create("n", ["10.0.0.0/255.0.0.0"]),
        "invalid subnet '10.0.0.0/255.0.0.0': expected CIDR notation like 192.168.1.0/24",
        id="subnet-netmask-form",
    ),
    pytest.param(
        Create("n", ["10.0.0.0/33"]),
        "invalid subnet '10.0.0.0/33': not an IPv4 or IPv6 network",
        id="subnet-prefix-too-long",
    ),
    pytest.param(
        Create("n", ["10.0.0.256/24"]),
        "invalid subnet '10.0.0.256/24': not an IPv4 or IPv6 network",
        id="subnet-bad-octet",
    ),
    pytest.param(
        Create("n", ["10.0.0.0/31"]),
        "invalid subnet 10.0.0.0/31: too small for a gateway and a container (IPv4 subnets are at most /30)",
        id="subnet-v4-too-small",
    ),
    pytest.param(
        Create("n", ["2001:db8::/127"]),
        "invalid subnet 2001:db8::/127: too small for a gateway and a container (IPv6 subnets are at most /126)",
        id="subnet-v6-too-small",
    ),
    pytest.param(
        Create("n", ["10.0.0.0/24", "10.0.0.0/24"]),
        "subnet 10.0.0.0/24 given more than once",
        id="subnet-duplicate",
    ),
    pytest.param(
        Create("n", ["10.0.0.0/16", "10.1.0.0/16", "10.0.5.0/24"]),
        "subnets 10.0.0.0/16 and 10.0.5.0/24 overlap",
        id="subnet-overlap",
    ),
    pytest.param(
        Create("n", ["2001:db8::/48", "2001:db8:0:1::/64"]),
        "subnets 2001:db8::/48 and 2001:db8:0:1::/64 overlap",
        id="subnet-overlap-v6",
    ),
    pytest.param(
        Create("n", ["192.168.114.0/24", "192.168.116.0/24"], ["192.168.115.254"]),
        "gateway 192.168.115.254 is outside every subnet (192.168.114.0/24, 192.168.116.0/24)",
        id="gateway-outside-subnets",
    ),
    pytest.param(
        Create("n", ["192.168.1.0/24"], ["2001:db8::1"]),
        "gateway 2001:db8::1 is outside every subnet (192.168.1.0/24)",
        id="gateway-v6-without-v6-subnet",
    ),
    pytest.param(
        Create("n", [], ["192.168.1.1"]),
        "gateway 192.168.1.1 needs a --subnet to belong to",
        id="gateway-without-subnet",
    ),
    pytest.param(
        Create("n", ["192.168.1.0/24"], ["192.168.1.0"]),
        "gateway 192.168.1.0 is the network address of 192.168.1.0/24",
        id="gateway-network-address",
    ),
    pytest.param(
        Create("n", ["2001:db8::/64"], ["2001:db8::"]),
        "gateway 2001:db8:: is the network address of 2001:db8::/64",
        id="gateway-v6-network-address",
    ),
    pytest.param(
        Create("n", ["192.168.1.0/24"], ["192.168.1.255"]),
        "gateway 192.168.1.255 is the broadcast address of 192.168.1.0/24",
        id="gateway-broadcast",
    ),
    pytest.param(
        Create("n", ["192.168.1.0/24"], ["192.168.1.1", "192.168.1.254"]),
        "subnet 192.168.1.0/24 has more than one gateway: 192.168.1.1 and 192.168.1.254",
        id="gateway-two-in-one-subnet",
    ),
    pytest.param(
        Create("n", ["192.168.1.0/24"], ["192.168.1.1", "192.168.1.1"]),
        "subnet 192.168.1.0/24 has more than one gateway: 192.168.1.1 and 192.168.1.1",
        id="gateway-repeated",
    ),
    pytest.param(
        Create("n", ["192.168.1.0/24"], ["gw"]),
        "invalid gateway 'gw': not an IP address",
        id="gateway-garbage",
    ),
    pytest.param(
        Create("n", ["192.168.1.0/24"], ["192.168.1.1/24"]),
        "invalid gateway '192.168.1.1/24': not an IP address",
        id="gateway-with-prefix",
    ),
    pytest.param(
        Create("n", ["fe80::/64"], ["fe80::1%eth0"]),
        "invalid gateway 'fe80::1%eth0': not an IP address",
        id="gateway-zone-index",
    ),
    pytest.param(
        Create("n", ["192.168.1.0/24"], ipv6=True),
        "--ipv6 needs an IPv6 --subnet",
        id="ipv6-without-v6-subnet",
    ),
    pytest.param(Create("n", ipv6=True), "--ipv6 needs an IPv6 --subnet", id="ipv6-without-subnet"),
]


@pytest.mark.parametrize(("create", "message"), REFUSALS)
def test_refusals(create: Create, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        create.spec()
    assert str(exc.value) == message


def test_unknown_options_listed_sorted() -> None:
    with pytest.raises(ConfigError, match=r"unknown option 'a', 'z': valid options are parent, ipvlan_mode"):
        network_spec("n", options={"z": "1", "parent": "eth0", "a": "2"})
