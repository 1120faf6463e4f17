"""The suite's model of libnetwork (conformance/libnetwork.py): Docker's default IPAM and request bodies."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest

from conformance.examples import NetworkRequest, parse_network_create
from conformance.libnetwork import (
    DEFAULT_POOLS_V4,
    AddressSpace,
    LibnetworkRefused,
    NetworkIpam,
    create_endpoint_body,
    create_network_body,
    enable_ipv6,
)


def request(flags: str) -> NetworkRequest:
    return parse_network_create(f"docker network create -d ipvlan {flags}")


def allocate(flags: str, space: AddressSpace | None = None, reserved: tuple[str, ...] = ()) -> NetworkIpam:
    return (space or AddressSpace()).allocate_network(request(flags), [ip_network(r, strict=False) for r in reserved])


def handed(ipam: NetworkIpam, owners: list[str], version: int = 4) -> list[str]:
    return [str(ipam.allocate(o, version)) for o in owners]


def test_gateway_is_the_first_usable_address_and_addresses_follow_in_order() -> None:
    ipam = allocate("--subnet=10.1.0.0/24 n")
    assert str(ipam.pools[0].gateway) == "10.1.0.1"
    assert handed(ipam, ["a", "b"]) == ["10.1.0.2/24", "10.1.0.3/24"]


def test_given_gateway_and_aux_addresses_are_skipped() -> None:
    ipam = allocate("--subnet=10.1.0.0/24 --gateway=10.1.0.2 --aux-address=router=10.1.0.3 n")
    assert handed(ipam, ["a", "b"]) == ["10.1.0.1/24", "10.1.0.4/24"]
    assert ipam.pools[0].ipam_data()["AuxAddresses"] == {"router": "10.1.0.3/24"}


def test_a_released_address_is_handed_out_next() -> None:
    # the daemon never asks for serial allocation: lowest free first
    ipam = allocate("--subnet=10.1.0.0/24 n")
    handed(ipam, ["a", "b", "c"])
    ipam.release("a")
    assert handed(ipam, ["d"]) == ["10.1.0.2/24"]


def test_ip_range_bounds_containers_but_not_the_gateway() -> None:
    ipam = allocate("--subnet=10.1.0.0/24 --ip-range=10.1.0.128/25 n")
    assert str(ipam.pools[0].gateway) == "10.1.0.1"
    assert handed(ipam, ["a"]) == ["10.1.0.128/24"]


def test_static_address_taken_or_outside_is_refused() -> None:
    ipam = allocate("--subnet=10.1.0.0/24 n")
    ipam.allocate("a", 4, ip_address("10.1.0.50"))
    with pytest.raises(LibnetworkRefused, match="Address already in use"):
        ipam.allocate("b", 4, ip_address("10.1.0.50"))
    with pytest.raises(LibnetworkRefused, match=r"invalid address 10\.9\.0\.1: It does not belong"):
        ipam.allocate("b", 4, ip_address("10.9.0.1"))


def test_a_full_pool_hands_over_to_the_next() -> None:
    ipam = allocate("--subnet=10.1.0.0/30 --subnet=10.2.0.0/24 n")  # /30: .1 gateway, .2 the only one left
    assert handed(ipam, ["a", "b"]) == ["10.1.0.2/30", "10.2.0.2/24"]


def test_default_pool_skips_reserved_and_allocated_networks() -> None:
    space = AddressSpace()
    host = ("172.17.0.1/16", "0.0.0.0/0")  # docker0's network; a default route says nothing
    first = allocate("a", space, reserved=host)
    second = allocate("b", space, reserved=host)
    assert [str(first.pools[0].subnet), str(second.pools[0].subnet)] == ["172.18.0.0/16", "172.19.0.0/16"]
    assert DEFAULT_POOLS_V4[-1] == ip_network("192.168.240.0/20")


def test_overlapping_pools_are_refused_and_released_pools_are_free_again() -> None:
    space = AddressSpace()
    ipam = allocate("--subnet=10.1.0.0/16 a", space)
    with pytest.raises(LibnetworkRefused, match="Pool overlaps with other one on this address space"):
        allocate("--subnet=10.1.2.0/24 b", space)
    space.release_network(ipam)
    allocate("--subnet=10.1.2.0/24 b", space)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        pytest.param("--subnet=10.1.0.5/24 n", "invalid subnet 10.1.0.5/24: it should be 10.1.0.0/24", id="host-bits"),
        pytest.param("--subnet=10.1.0.0/24 --gateway=10.2.0.1 n", "no matching subnet for gateway", id="gateway"),
        pytest.param("--subnet=10.1.0.0/24 --ip-range=10.2.0.0/25 n", "no matching subnet for range", id="range"),
        pytest.param(
            "--subnet=10.1.0.0/24 --subnet=10.2.0.0/24 --gateway=10.1.0.1 --gateway=10.1.0.2 n",
            "multiple gateways",
            id="two-gateways",
        ),
        pytest.param(
            "--subnet=10.1.0.0/16 --subnet=10.1.2.0/24 n", "multiple overlapping subnet configuration", id="overlap"
        ),
        pytest.param(
            "--gateway=10.1.0.1 n", "every ip-range or gateway must have a corresponding subnet", id="lone-gw"
        ),
    ],
)
def test_what_docker_itself_refuses(flags: str, message: str) -> None:
    with pytest.raises(LibnetworkRefused, match=message):
        allocate(flags)


def test_ipv6_pools_only_with_ipv6() -> None:
    assert not enable_ipv6(request("--subnet=10.1.0.0/24 n"))
    assert enable_ipv6(request("--ipv6 --subnet=10.1.0.0/24 --subnet=2001:db8::/64 n"))
    # the fixtures' errata: the 1.13 pages' v6 --subnet without --ipv6 asks for IPv6 too
    assert enable_ipv6(request("--subnet=2001:db8::/64 n"))
    ipam = allocate("--subnet=2001:db8::/64 --gateway=2001:db8::22 n")
    assert [str(p.subnet) for p in ipam.pools] == ["172.17.0.0/16", "2001:db8::/64"]
    assert handed(ipam, ["a"], 6) == ["2001:db8::1/64"]  # ::0 is the subnet-router anycast address
    with pytest.raises(LibnetworkRefused, match="IPv6 pool"):
        allocate("--ipv6 n")


def test_point_to_point_subnets_keep_every_address() -> None:
    ipam = allocate("--subnet=10.1.0.0/31 n")
    assert str(ipam.pools[0].gateway) == "10.1.0.0"
    assert handed(ipam, ["a"]) == ["10.1.0.1/31"]


def test_bodies_carry_options_untouched() -> None:
    req = request("--subnet=10.1.0.0/24 --internal -o parent=eth0 -o vni=4096 -o Odd=Key=value n")
    ipam = AddressSpace().allocate_network(req)
    body = create_network_body("id1", req, ipam)
    assert body["Options"] == {
        "com.docker.network.generic": {"parent": "eth0", "vni": "4096", "Odd": "Key=value"},
        "com.docker.network.enable_ipv6": False,
        "com.docker.network.internal": True,
    }
    assert body["IPv6Data"] == []
    addrs = [ipam.allocate("a", 4)]
    assert create_endpoint_body("id1", "ep1", addrs)["Interface"] == {"Address": "10.1.0.2/24", "MacAddress": ""}


def test_a_driver_that_skips_the_gateway_gets_none_unless_one_is_given() -> None:
    # GwAllocCheck's SkipIPv4: no gateway is allocated, and IPAMData has no Gateway key
    space = AddressSpace()
    ipam = space.allocate_network(request("--subnet=10.1.0.0/24 n"), skip_gateway=(True, False))
    assert ipam.pools[0].gateway is None and "Gateway" not in ipam.pools[0].ipam_data()
    assert handed(ipam, ["a"]) == ["10.1.0.1/24"]
    given = space.allocate_network(request("--subnet=10.2.0.0/24 --gateway=10.2.0.1 m"), skip_gateway=(True, True))
    assert given.pools[0].ipam_data()["Gateway"] == "10.2.0.1/24"


def test_static_addresses_are_checked_before_ipam() -> None:
    ipam = allocate("--subnet=10.1.0.0/24 n")
    assert ipam.check_static("10.1.0.9", None) == {4: ip_address("10.1.0.9"), 6: None}
    with pytest.raises(LibnetworkRefused) as refused:
        ipam.check_static("10.2.0.9", "2001:db8::9")
    assert str(refused.value).splitlines() == [
        "invalid endpoint settings:",
        "no configured subnet contains IP address 10.2.0.9",
        "no configured subnet contains IP address 2001:db8::9",
    ]
    with pytest.raises(LibnetworkRefused, match="invalid IPv4 address: 2001:db8::9"):
        ipam.check_static("2001:db8::9", None)
