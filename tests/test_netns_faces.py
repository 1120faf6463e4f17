"""netnsutil's errors are its own; the driver's face (ipvlan_driver.netns) reports them as DriverErrors,
so `ipvlan-driver` still prints `Error: ...` for a namespace that is taken, missing or misnamed."""

from __future__ import annotations

import os

import pytest

import netnsutil
from ipvlan_driver import netns as ns
from ipvlan_driver.errors import ConflictError, DriverError, NotFoundError


def test_a_bad_name_is_a_driver_error_on_the_driver_side_only() -> None:
    with pytest.raises(netnsutil.NetnsError, match="invalid network namespace name 'a/b'"):
        netnsutil.netns_path("a/b")
    with pytest.raises(DriverError, match="invalid network namespace name 'a/b'"):
        ns.netns_path("a/b")


def test_entering_a_missing_namespace_is_not_found() -> None:
    with pytest.raises(netnsutil.NetnsMissing), netnsutil.entered("nfmissing"):
        pass
    with pytest.raises(NotFoundError, match="network namespace 'nfmissing' does not exist"), ns.entered("nfmissing"):
        pass


def test_what_the_block_raises_passes_through_untranslated() -> None:
    with pytest.raises(netnsutil.NetnsExists), ns.entered(None):
        raise netnsutil.NetnsExists("raised by the block, not by entering")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")
def test_a_taken_name_is_a_conflict() -> None:
    name = f"nf{os.getpid()}"
    ns.create(name)
    try:
        with pytest.raises(ConflictError, match=f"network namespace '{name}' already exists"):
            ns.create(name)
        with pytest.raises(netnsutil.NetnsExists):
            netnsutil.create(name)
        assert ns.run_in(name, lambda: os.readlink("/proc/thread-self/ns/net")) != os.readlink(
            "/proc/thread-self/ns/net"
        ), "run_in ran the work inside the namespace"
    finally:
        ns.remove(name)
    assert not ns.exists(name)
