"""The driver's netlink connection names links by ifindex: looked up once per connection by an ioctl answered
in the connection's namespace, and looked up again when a cached index has gone (veth on this host)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from ipvlan_driver import netns as ns
from ipvlan_driver.errors import NotFoundError
from ipvlan_driver.netlink import Netlink

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="cannot run here: needs root (network namespaces)"),
]
NETNS = "ivt-index"


@pytest.fixture
def nl() -> Iterator[Netlink]:
    ns.remove(NETNS)
    ns.create(NETNS)
    try:
        with Netlink(NETNS) as conn:
            yield conn
    finally:
        ns.remove(NETNS)


def test_index_of_answers_in_the_connections_namespace(nl: Netlink) -> None:
    nl.add_veth("ix0", "ix1")
    assert nl.index_of("ix0") == nl.require("ix0").index
    assert nl.index_of("lo") == 1
    assert nl.index_of("nothere0") is None
    assert nl.index_of("x" * 16) is None  # longer than any link name
    with Netlink(None) as root:
        assert root.index_of("ix0") is None  # the root namespace has no such link


def test_a_cached_index_that_has_gone_is_looked_up_again(nl: Netlink) -> None:
    nl.add_veth("ix0", "ix1")
    nl.set_up("ix0")  # caches ix0's index
    old = nl.index_of("ix0")
    with Netlink(NETNS) as other:  # someone else re-creates the link under the same name
        other.delete_link("ix0")
        other.add_veth("ix0", "ix1")
    nl.assume_index("ix0", old or 0)
    nl.set_mtu("ix0", 1400)  # the stale index fails with ENODEV, the fresh one is used
    assert nl.require("ix0").mtu == 1400 and nl.require("ix0").index != old


def test_a_missing_link_is_not_found_by_name(nl: Netlink) -> None:
    with pytest.raises(NotFoundError, match="'gone0' does not exist"):
        nl.set_up("gone0")
