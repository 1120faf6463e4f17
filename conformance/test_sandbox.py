"""What the docs take for granted about a container's network: the namespace libnetwork sets up around the
endpoint (lo and eth0 up, nothing else; eth0 as its parent's; IPv6 off without an IPv6 address), and that
`rm` takes away everything `run` made that others could see.

Checked against moby's libnetwork: osl/namespace_linux.go `loopbackUp` (every sandbox's lo is brought up),
osl/interface_linux.go `configureInterface` / `setInterfaceIPv6` (renamed to eth0, MTU left as the kernel
gives an ipvlan slave, i.e. its parent's; `setIPv6(..., addr != nil)` turns IPv6 off on an interface
without an IPv6 address, since Docker 26.0.2), drivers/ipvlan `createIPVlan` (no MTU of its own).
"""

from __future__ import annotations

import functools
import re
import shlex
import subprocess

import pytest

import netnsutil as ns

from .cases import Case, example_cases, params
from .checks import bare_namespace_links, global_addresses, links, sysctl
from .deploy import Deployment, worker_prefix
from .examples import ContainerRequest, Example
from .observe import IFF_BROADCAST, IFF_LOWER_UP, IFF_MULTICAST, IFF_UP, Link

ETH0_FLAGS = {"UP": IFF_UP, "LOWER_UP": IFF_LOWER_UP, "BROADCAST": IFF_BROADCAST, "MULTICAST": IFF_MULTICAST}
RESOLVE_WAIT = 3.0
# what busybox's and iputils' ping print once a name is resolved, before anything is sent
_RESOLVED = re.compile(r"^PING \S+ \(([0-9a-fA-F:.]+)\)", re.MULTILINE)


def _has_containers(ex: Example) -> bool:
    return bool(ex.containers and ex.networks)


def _mode(ex: Example, network: str) -> str:
    return next(
        (req.opts.get("ipvlan_mode", "l2") for step in ex.networks if (req := step.request).name == network), "l2"
    )


def _v4_only(ex: Example, req: ContainerRequest) -> bool:
    """The container gets no IPv6 address: its network is neither --ipv6 nor given an IPv6 subnet."""
    net = next((s.request for s in ex.networks if s.request.name == req.network), None)
    return net is not None and not net.ipv6 and not any(":" in s for s in net.subnets) and not req.ip6


@functools.cache
def _kernel_made() -> frozenset[str]:
    """What every new namespace holds on this kernel (asked once a run: it depends on the host's modules)."""
    return frozenset(bare_namespace_links(worker_prefix()))


@pytest.mark.parametrize("case", params(example_cases("netns-holds-lo-and-eth0", when=_has_containers)))
def test_netns_holds_lo_and_eth0(case: Case, deployment: Deployment) -> None:
    kernel_made = _kernel_made()
    for name, attached in deployment.attached.items():
        seen = links(attached.netns)
        extra = sorted(set(seen) - kernel_made - {"eth0"})
        assert not extra, f"{name}: the namespace holds links besides lo and eth0: {extra}"
        assert "eth0" in seen, f"{name}: no eth0 in the container's namespace (saw {sorted(seen)})"
        assert seen["lo"].up, f"{name}: lo is down (libnetwork brings every sandbox's loopback up)"
        assert seen["eth0"].up, f"{name}: eth0 is down"


def _flags(link: Link) -> list[str]:
    return [flag for flag, bit in ETH0_FLAGS.items() if link.flags & bit]


@pytest.mark.parametrize("case", params(example_cases("eth0-matches-parent", when=_has_containers)))
def test_eth0_matches_parent(case: Case, deployment: Deployment) -> None:
    """eth0 as the docs print it (`eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500`), NOARP only in l3/l3s,
    and its parent's MTU: neither libnetwork nor its ipvlan driver sets one, so the kernel copies the parent's."""
    host = links(deployment.topo.host)
    by_index = {link.index: link for link in host.values()}
    for req in (s.request for s in case.example.containers):
        name = req.name
        eth0 = links(deployment.container(name).netns).get("eth0")
        assert eth0 is not None, f"{name}: the container's interface is not named eth0"
        parent = by_index.get(eth0.parent_index or 0)
        assert parent is not None, f"{name}: eth0's parent (ifindex {eth0.parent_index}) is not on the docker host"
        assert eth0.mtu == parent.mtu, f"{name}: eth0 has MTU {eth0.mtu}, its parent {parent.name} {parent.mtu}"
        missing = sorted(set(ETH0_FLAGS) - set(_flags(eth0)))
        assert not missing, f"{name}: eth0 lacks {missing} (flags {_flags(eth0)})"
        l3 = _mode(case.example, req.network) in ("l3", "l3s")
        assert eth0.noarp == l3, f"{name}: NOARP is {'off' if l3 else 'on'} in {_mode(case.example, req.network)}"


@pytest.mark.parametrize(
    "case",
    params(
        example_cases(
            "ipv6-off-without-v6-address",
            when=lambda ex: _has_containers(ex) and any(_v4_only(ex, s.request) for s in ex.containers),
        )
    ),
)
def test_ipv6_off_without_v6_address(case: Case, deployment: Deployment) -> None:
    """libnetwork's setInterfaceIPv6: an interface without an IPv6 address has IPv6 disabled, so it joins
    no IPv6 multicast group, has no link-local address and ignores NDP and router advertisements."""
    for req in (s.request for s in case.example.containers):
        if not _v4_only(case.example, req):
            continue
        netns = deployment.container(req.name).netns
        disabled = sysctl(netns, "net.ipv6.conf.eth0.disable_ipv6")
        if disabled is None:
            pytest.skip("this kernel has no IPv6: there is nothing to turn off")
        v6 = sorted(a for a in global_addresses(netns) if ":" in a)
        assert not v6, f"{req.name}: its network has no IPv6 subnet, yet eth0 holds {v6}"
        assert disabled == "1", f"{req.name}: eth0 has no IPv6 address but IPv6 is on (disable_ipv6={disabled})"


# life cycle: what `rm` must take away ---------------------------------------------------------------


def _resolved(dep: Deployment, where: str, name: str) -> str | None:
    """The address `name` resolves to inside container `where` (None: it does not resolve)."""
    # a name still known (hosts file, the engine's DNS records) resolves at once; one that is not falls
    # through to the host's resolvers, unreachable from the lab: ask them once, briefly (glibc's
    # RES_OPTIONS), and take a lookup still unanswered after RESOLVE_WAIT as not resolving
    # (`sh -c`: the docker backend's busybox image has sh and ping, not env)
    argv = ["sh", "-c", f"RES_OPTIONS='timeout:1 attempts:1' ping -c 1 -W 1 {shlex.quote(name)}"]
    try:
        proc = dep.backend.exec(where, argv, timeout=RESOLVE_WAIT)
    except subprocess.TimeoutExpired:
        return None
    found = _RESOLVED.search(proc.stdout)
    return found.group(1) if found else None


def _leftovers(dep: Deployment, netns: str, host_before: set[str]) -> list[str]:
    """What of a removed container others can still see: its namespace, its files, its link on the host
    (a slave handed back to the host, as libnetwork's sandbox teardown does, must be deleted there)."""
    left = []
    if ns.exists(netns):
        left.append(f"its namespace /run/netns/{netns}")
    if (ns.NETNS_ETC_DIR / netns).exists():
        left.append(f"its files {ns.NETNS_ETC_DIR / netns}")
    host = links(dep.topo.host)
    new = sorted(set(host) - host_before)
    if new:
        left.append(f"links on the docker host that were not there before: {new}")
    slaves = sorted(n for n, link in host.items() if link.kind == "ipvlan")
    if slaves:
        left.append(f"ipvlan links on the docker host {slaves}")
    return left


def _survivor(dep: Deployment, req: ContainerRequest, removed: set[str]) -> str | None:
    """A container still running on `req`'s network, to ask for `req`'s name (names are per network)."""
    for other in (s.request for s in dep.example.containers):
        if other.network == req.network and other.name != req.name and other.name not in removed:
            return other.name
    return None


@pytest.mark.parametrize("case", params(example_cases("rm-leaves-nothing-observable", when=_has_containers)))
def test_rm_leaves_nothing_observable(case: Case, spent_deployment: Deployment) -> None:
    """`rm` undoes `run`: the namespace, its files and any link go, and the name stops resolving from the
    containers left, where it resolved while the container lived. (Its addresses coming back at once is
    <example>-addresses-released-on-rm.) Containers go in reverse order, so each but the first has a witness."""
    dep = spent_deployment
    # only where the docs resolve names (db_net_ipv): a lookup that fails may wait for an outside resolver
    names = "names" in case.example.requires and "names" in dep.backend.capabilities
    removed: set[str] = set()
    host_before = set(links(dep.topo.host))
    for req in (s.request for s in reversed(dep.example.containers)):
        attached = dep.container(req.name)
        witness = _survivor(dep, req, removed) if names else None
        if witness is not None:
            before = _resolved(dep, witness, req.name)
            assert before is not None, f"`{req.name}` does not resolve from {witness} while {req.name} runs"
        dep.backend.remove(req.name)
        removed.add(req.name)
        del dep.attached[req.name]
        left = _leftovers(dep, attached.netns, host_before)
        assert not left, f"after `rm {req.name}` there remain: {'; '.join(left)}"
        if witness is not None:
            after = _resolved(dep, witness, req.name)
            assert after is None, f"after `rm {req.name}`, {witness} still resolves `{req.name}` to {after}"
