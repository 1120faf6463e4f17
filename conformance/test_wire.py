"""Wire level, seen from the upstream switch: 802.1Q tags on the trunk, no ARP answers in L3 mode."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from .cases import Case, example_cases, params
from .checks import global_addresses, ping
from .deploy import Deployment
from .observe import Observer
from .wire import send_frame, tap, wait_for


def _vlan_parent(ex: Any) -> int | None:
    if not ex.networks or not ex.containers:
        return None
    vid = ex.networks[0].expect.parent.vlan_id
    vlans = ex.upstream.get("vlans") or {}
    return int(vid) if vid is not None and int(vid) in {int(k) for k in vlans} else None


def _describe(frames: list[bytes]) -> str:
    from scapy.layers.l2 import Ether

    return "\n".join(f"  {Ether(f).summary()}" for f in frames[:12]) or "  (no frames)"


@pytest.mark.parametrize("case", params(example_cases("frames-tagged-on-trunk", when=lambda ex: _vlan_parent(ex))))
def test_frames_tagged_on_trunk(case: Case, deployment: Deployment) -> None:
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Dot1Q, Ether

    vid = _vlan_parent(case.example)
    assert vid is not None
    gateway = str(ipaddress.ip_interface(str(case.example.upstream["vlans"][vid][0])).ip)
    name, attached = next(iter(deployment.attached.items()))
    v6 = ":" in gateway
    src = next(a.split("/")[0] for a in global_addresses(attached.netns) if (":" in a) == v6)
    layer = IPv6 if v6 else IP

    def tagged(frame: bytes) -> bool:
        pkt = Ether(frame)
        return Dot1Q in pkt and pkt[Dot1Q].vlan == vid and layer in pkt and pkt[layer].src == src

    with tap(deployment.topo.upstream, "p1") as frames:
        result = ping(attached.netns, gateway, expect_reply=True)
        seen = wait_for(frames, tagged, 1.0)
    assert seen, (
        f"no frame from {name} ({src}) carried 802.1Q VLAN {vid} on the upstream trunk "
        f"(ping {result}); frames seen:\n{_describe(frames)}"
    )


def _arp_probe_cases() -> Any:
    def eligible(ex: Any) -> bool:
        if not ex.networks or not ex.containers:
            return False
        return bool(ex.networks[0].expect.parent.name == "eth0")

    return example_cases("broadcast-arp-from-upstream", when=eligible)


@pytest.mark.parametrize("case", params(_arp_probe_cases()))
def test_broadcast_arp(case: Case, deployment: Deployment) -> None:
    """L2 containers answer a broadcast ARP from the segment; L3/L3s drop all broadcast (docs)."""
    from scapy.layers.l2 import ARP, Ether

    mode = case.example.networks[0].expect.mode
    name, attached = next(iter(deployment.attached.items()))
    target = next(a.split("/")[0] for a in global_addresses(attached.netns) if ":" not in a)
    with Observer(deployment.topo.upstream) as up:
        mac = up.require("br0").mac
    # the switch's own MAC: a reply to it is delivered to br0, where the tap listens
    request = Ether(dst="ff:ff:ff:ff:ff:ff", src=mac) / ARP(op=1, hwsrc=mac, psrc="192.168.1.99", pdst=target)

    def reply(frame: bytes) -> bool:
        pkt = Ether(frame)
        return ARP in pkt and pkt[ARP].op == 2 and pkt[ARP].psrc == target

    with tap(deployment.topo.upstream, "br0") as frames:
        send_frame(deployment.topo.upstream, "br0", bytes(request))
        answered = wait_for(frames, reply, 1.5 if mode != "l2" else 4.0)
    if mode == "l2":
        assert answered, f"{name} ({target}) in l2 mode should answer a broadcast ARP:\n{_describe(frames)}"
    else:
        assert not answered, f"{name} ({target}) in {mode} mode must not answer ARP:\n{_describe(frames)}"


def _switching_cases() -> Any:
    def eligible(ex: Any) -> bool:
        if len(ex.containers) < 2 or not ex.networks:
            return False
        expect = ex.networks[0].expect
        return expect.parent.name == "eth0" and expect.mode == "l2" and expect.flag in ("bridge", "vepa")

    return example_cases("container-to-container-path", when=eligible)


@pytest.mark.parametrize("case", params(_switching_cases()))
def test_container_to_container_path(case: Case, deployment: Deployment) -> None:
    """bridge: ipvlan switches between its containers inside the host; vepa: every frame goes to the
    upstream switch (and comes back only because it hairpins)."""
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.l2 import Ether

    flag = case.example.networks[0].expect.flag
    (a, ca), (b, cb) = list(deployment.attached.items())[:2]
    src = next(x.split("/")[0] for x in global_addresses(ca.netns) if ":" not in x)
    dst = next(x.split("/")[0] for x in global_addresses(cb.netns) if ":" not in x)

    def echo(frame: bytes) -> bool:
        pkt = Ether(frame)
        return IP in pkt and ICMP in pkt and pkt[IP].src == src and pkt[IP].dst == dst

    with tap(deployment.topo.upstream, "p1") as frames:
        result = ping(ca.netns, dst, expect_reply=True)
        on_wire = wait_for(frames, echo, 1.0 if flag == "vepa" else 0.5)
    assert result.ok, f"{a} should reach {b} in {flag} mode: {result}"
    if flag == "vepa":
        assert on_wire, f"vepa: {a} -> {b} must travel via the upstream switch; frames seen:\n{_describe(frames)}"
    else:
        assert not on_wire, f"bridge: {a} -> {b} must be switched inside the host, not sent upstream"
