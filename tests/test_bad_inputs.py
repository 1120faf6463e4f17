"""Hostile and mistaken input, through the CLI and the plugin socket: each refused with one line naming
the culprit, and the host's links, namespaces and the state exactly as they were.

Runs on any host as root: every refusal here happens before the driver would need an ipvlan kernel.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ipvlan_driver import cli
from ipvlan_driver import netns as ns
from ipvlan_driver.driver import Driver, DriverConfig
from ipvlan_driver.netlink import Netlink
from ipvlan_driver.state import DB_NAME, SCHEMA_VERSION
from tests.hosts import docker_host, serving

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")
BASE_SUBNET = "10.50.0.0/24"
LONG = "n" * 65


@dataclass
class Lab:
    host: str
    state: Path
    prefix: str
    sock: Path

    def snapshot(self) -> tuple[Any, ...]:
        with Netlink(self.host) as nl:
            links = sorted((link.name, link.kind) for link in nl.links())
        spaces = sorted(n for n in ns.list_names() if n.startswith(self.prefix))
        return links, spaces, _dump(self.state), _dump(self.state.parent / "plugin-state")


def _dump(state: Path) -> list[Any]:
    db = state / DB_NAME
    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(db)) as conn:
        records = conn.execute("SELECT kind, key, data FROM records ORDER BY kind, key").fetchall()
        intents = conn.execute("SELECT data FROM intents").fetchall()
    return [records, intents]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("bad")
    with docker_host(f"tbad{os.getpid()}", ("eth0", "eth1")) as host:
        the_lab = Lab(host, tmp / "state", f"{host}c-", tmp / "plugin.sock")
        assert _cli(the_lab, "network", "create", f"--subnet={BASE_SUBNET}", "-o", "parent=eth1", "base")[0] == 0
        driver = Driver(DriverConfig(state_dir=tmp / "plugin-state", host_netns=host, container_prefix=the_lab.prefix))
        with serving(the_lab.sock, driver, read_timeout=1.0, max_body=512 * 1024):
            _post(the_lab, "IpamDriver.RequestPool", {"Pool": "10.60.0.0/24", "AddressSpace": "LocalIpvlan"})
            _post(the_lab, "NetworkDriver.CreateNetwork", _create_body("p" * 64, "10.61.0.0/24"))
            yield the_lab


def _cli(lab: Lab, *argv: str, state: str | None = None) -> tuple[int, str]:
    base = ["--state-dir", state if state is not None else str(lab.state), "--host-netns", lab.host]
    if not any(a.startswith("--netns-prefix") for a in argv):
        base += ["--netns-prefix", lab.prefix]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.main([*base, *argv])
        except SystemExit as exc:  # argparse's usage errors
            code = int(exc.code or 0)
    return code, err.getvalue()


def _create_body(network_id: str, pool: str, **generic: str) -> dict[str, Any]:
    return {
        "NetworkID": network_id,
        "Options": {"com.docker.network.generic": {"parent": "eth0", **generic}},
        "IPv4Data": [{"AddressSpace": "LocalDefault", "Pool": pool, "Gateway": pool.replace("0/24", "1/24")}],
        "IPv6Data": [],
    }


def _raw(lab: Lab, data: bytes, timeout: float = 10) -> tuple[int, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(lab.sock))
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)  # a server may answer (413) and close before reading an oversized body
        buf = b""
        while chunk := sock.recv(65536):
            buf += chunk
            head, _, body = buf.partition(b"\r\n\r\n")
            length = [int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")]
            if length and len(body) >= length[0]:
                break
    head, _, body = buf.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _post(lab: Lab, method: str, body: Any) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    head = f"POST /{method} HTTP/1.1\r\nHost: plugin\r\nContent-Length: {len(raw)}\r\nConnection: close\r\n\r\n"
    return _raw(lab, head.encode() + raw)


# --- the CLI ------------------------------------------------------------------------------

NC = ("network", "create")
CLI_CASES: list[tuple[str, tuple[str, ...], str]] = [
    ("subnet-everything", (*NC, "--subnet=0.0.0.0/0", "-o", "parent=eth0", "n"), "0.0.0.0/0"),
    ("subnet-everything-v6", (*NC, "--subnet=::/0", "-o", "parent=eth0", "n"), "::/0"),
    ("subnet-of-another-network", (*NC, f"--subnet={BASE_SUBNET}", "-o", "parent=eth0", "n"), BASE_SUBNET),
    ("subnet-inside-another", (*NC, "--subnet=10.50.0.128/25", "-o", "parent=eth0", "n"), BASE_SUBNET),
    ("subnet-around-another", (*NC, "--subnet=10.0.0.0/8", "-o", "parent=eth0", "n"), BASE_SUBNET),
    ("subnet-twice", (*NC, "--subnet=192.168.1.0/24", "--subnet=192.168.1.0/24", "n"), "more than once"),
    ("subnets-overlap", (*NC, "--subnet=192.168.1.0/24", "--subnet=192.168.1.128/25", "n"), "192.168.1.128/25"),
    ("subnet-host-bits", (*NC, "--subnet=192.168.1.5/24", "n"), "192.168.1.0/24"),
    ("subnet-no-prefix", (*NC, "--subnet=192.168.1.0", "n"), "192.168.1.0"),
    ("subnet-prefix-33", (*NC, "--subnet=192.168.1.0/33", "n"), "192.168.1.0/33"),
    ("subnet-octet-300", (*NC, "--subnet=300.1.1.0/24", "n"), "300.1.1.0/24"),
    ("subnet-word", (*NC, "--subnet=abc", "n"), "abc"),
    ("subnet-zone", (*NC, "--subnet=fe80::/64%eth0", "n"), "fe80::/64%eth0"),
    ("subnet-leading-zero-prefix", (*NC, "--subnet=192.168.1.0/024", "n"), "192.168.1.0/024"),
    ("subnet-too-small", (*NC, "--subnet=192.168.1.0/31", "n"), "/30"),
    ("subnet-too-small-v6", (*NC, "--subnet=2001:db8::/127", "n"), "/126"),
    ("subnet-netmask-form", (*NC, "--subnet=192.168.1.0/255.255.255.0", "n"), "255.255.255.0"),
    ("subnet-empty", (*NC, "--subnet=", "n"), "''"),
    ("gateway-outside", (*NC, "--subnet=192.168.1.0/24", "--gateway=192.168.2.1", "n"), "192.168.2.1"),
    ("gateway-network-address", (*NC, "--subnet=192.168.1.0/24", "--gateway=192.168.1.0", "n"), "192.168.1.0"),
    ("gateway-broadcast", (*NC, "--subnet=192.168.1.0/24", "--gateway=192.168.1.255", "n"), "192.168.1.255"),
    ("gateway-garbage", (*NC, "--subnet=192.168.1.0/24", "--gateway=garbage", "n"), "garbage"),
    ("gateway-zone", (*NC, "--subnet=fe80::/64", "--gateway=fe80::1%eth0", "n"), "fe80::1%eth0"),
    ("gateway-with-prefix", (*NC, "--subnet=192.168.1.0/24", "--gateway=192.168.1.1/24", "n"), "192.168.1.1/24"),
    (
        "two-gateways-one-subnet",
        (*NC, "--subnet=192.168.1.0/24", "--gateway=192.168.1.1", "--gateway=192.168.1.2", "n"),
        "more than one gateway",
    ),
    ("gateway-without-subnet", (*NC, "--gateway=192.168.1.1", "n"), "needs a --subnet"),
    ("gateway-wrong-family", (*NC, "--subnet=192.168.1.0/24", "--gateway=2001:db8::1", "n"), "2001:db8::1"),
    ("ipv6-without-v6-subnet", (*NC, "--ipv6", "--subnet=192.168.1.0/24", "n"), "--ipv6"),
    ("mode-l4", (*NC, "-o", "ipvlan_mode=l4", "n"), "l4"),
    ("mode-upper-case", (*NC, "-o", "ipvlan_mode=L2", "n"), "L2"),
    ("mode-empty", (*NC, "-o", "ipvlan_mode=", "n"), "ipvlan_mode"),
    ("mode-with-space", (*NC, "-o", "ipvlan_mode=l2 ", "n"), "l2 "),
    ("flag-loud", (*NC, "-o", "ipvlan_flag=loud", "n"), "loud"),
    ("flag-capital", (*NC, "-o", "ipvlan_flag=Private", "n"), "Private"),
    ("parent-loopback", (*NC, "-o", "parent=lo", "n"), "loopback"),
    ("parent-slash", (*NC, "-o", "parent=a/b", "n"), "a/b"),
    ("parent-too-long", (*NC, "-o", "parent=averyverylongname0", "n"), "averyverylongname0"),
    ("parent-space", (*NC, "-o", "parent=eth 0", "n"), "eth 0"),
    ("parent-colon", (*NC, "-o", "parent=eth0:1", "n"), "eth0:1"),
    ("parent-missing", (*NC, "-o", "parent=nosuch", "n"), "nosuch"),
    ("parent-missing-base", (*NC, "-o", "parent=nosuch.20", "n"), "nosuch"),
    ("vlan-id-zero", (*NC, "-o", "parent=eth0.0", "n"), "eth0.0"),
    ("vlan-id-4095", (*NC, "-o", "parent=eth0.4095", "n"), "eth0.4095"),
    ("vlan-id-5000", (*NC, "-o", "parent=eth0.5000", "n"), "eth0.5000"),
    ("vlan-on-loopback", (*NC, "-o", "parent=lo.20", "n"), "lo.20"),
    ("parent-in-use", (*NC, "--subnet=10.70.0.0/24", "-o", "parent=eth1", "n"), "base"),
    ("unknown-option", (*NC, "-o", "foo=bar", "n"), "foo"),
    ("option-without-value", (*NC, "-o", "parentlo", "n"), "parentlo"),
    ("option-empty-key", (*NC, "-o", "=x", "n"), "=x"),
    ("option-twice", (*NC, "-o", "parent=eth0", "-o", "parent=eth1", "n"), "more than once"),
    ("driver-macvlan", (*NC, "-d", "macvlan", "n"), "macvlan"),
    ("name-with-space", (*NC, "-o", "parent=eth0", "bad name"), "bad name"),
    ("name-with-slash", (*NC, "-o", "parent=eth0", "a/b"), "a/b"),
    ("name-too-long", (*NC, "-o", "parent=eth0", LONG), LONG),
    ("name-empty", (*NC, "-o", "parent=eth0", ""), "''"),
    ("name-taken", (*NC, "--subnet=10.71.0.0/24", "-o", "parent=eth0", "base"), "base"),
    ("network-rm-unknown", ("network", "rm", "nosuch"), "nosuch"),
    ("network-inspect-unknown", ("network", "inspect", "nosuch"), "nosuch"),
    ("run-unknown-network", ("run", "--net=nosuch", "-d", "alpine"), "nosuch"),
    ("run-ip-octet-300", ("run", "--net=base", "--ip=10.50.0.300", "-d", "alpine"), "10.50.0.300"),
    ("run-ip-outside", ("run", "--net=base", "--ip=10.99.0.5", "-d", "alpine"), "10.99.0.5"),
    ("run-ip-network-address", ("run", "--net=base", "--ip=10.50.0.0", "-d", "alpine"), "10.50.0.0"),
    ("run-ip-broadcast", ("run", "--net=base", "--ip=10.50.0.255", "-d", "alpine"), "10.50.0.255"),
    ("run-ip-gateway", ("run", "--net=base", "--ip=10.50.0.1", "-d", "alpine"), "10.50.0.1"),
    ("run-ip-is-v6", ("run", "--net=base", "--ip=2001:db8::5", "-d", "alpine"), "2001:db8::5"),
    ("run-ip6-no-v6-subnet", ("run", "--net=base", "--ip6=2001:db8::5", "-d", "alpine"), "2001:db8::5"),
    ("run-ip6-is-v4", ("run", "--net=base", "--ip6=10.50.0.5", "-d", "alpine"), "10.50.0.5"),
    ("run-ip-with-prefix", ("run", "--net=base", "--ip=10.50.0.5/24", "-d", "alpine"), "10.50.0.5/24"),
    ("run-name-with-space", ("run", "--net=base", "--name=bad name", "-d", "alpine"), "bad name"),
    ("run-name-one-char", ("run", "--net=base", "--name=x", "-d", "alpine"), "'x'"),
    ("run-name-too-long", ("run", "--net=base", f"--name={LONG}", "-d", "alpine"), LONG),
    ("run-name-dot-dot", ("run", "--net=base", "--name=..", "-d", "alpine"), ".."),
    ("netns-prefix-300", ("--netns-prefix", "p" * 300, "run", "--net=base", "-d", "alpine"), "ppppp"),
    ("netns-prefix-slash", ("--netns-prefix", "a/b", "run", "--net=base", "-d", "alpine"), "a/b"),
    ("rm-unknown", ("rm", "nosuch"), "nosuch"),
    ("exec-unknown", ("exec", "nosuch", "true"), "nosuch"),
    ("exec-no-command", ("exec", "nosuch"), "command"),
    ("run-without-net", ("run", "-d", "alpine"), "--net"),
]


@pytest.mark.parametrize(("argv", "culprit"), [pytest.param(a, c, id=i) for i, a, c in CLI_CASES])
def test_cli_refuses_with_one_line(lab: Lab, argv: tuple[str, ...], culprit: str) -> None:
    before = lab.snapshot()
    code, err = _cli(lab, *argv)
    assert code != 0, f"accepted: {argv}"
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if not line.startswith("usage:") and line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1 and culprit in errors[0], f"expected one `Error:` line naming {culprit!r}: {err!r}"
    assert lab.snapshot() == before, "a refused command must leave links, namespaces and state as they were"


def test_state_dir_that_is_a_file(lab: Lab, tmp_path: Path) -> None:
    target = tmp_path / "afile"
    target.write_text("x")
    code, err = _cli(lab, "network", "ls", state=str(target))
    assert code == 1 and err.startswith("Error: ") and str(target) in err and "Traceback" not in err
    assert target.read_text() == "x"


@pytest.mark.parametrize("state", ["", "."])
def test_empty_state_dir_is_refused(lab: Lab, state: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = _cli(lab, "network", "ls", state=state)
    assert code == 1 and "--state-dir" in err
    assert list(tmp_path.iterdir()) == [], "nothing is written into the current directory"


def test_future_version_state_is_refused_and_kept(lab: Lab, tmp_path: Path) -> None:
    state = tmp_path / "future"
    state.mkdir()
    with contextlib.closing(sqlite3.connect(state / DB_NAME)) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    code, err = _cli(lab, "network", "ls", state=str(state))
    assert code == 1 and "newer ipvlan-driver" in err
    with contextlib.closing(sqlite3.connect(state / DB_NAME)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


def test_corrupt_record_blocks_no_other_network(lab: Lab, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    state = tmp_path / "corrupt"
    assert (
        _cli(lab, "network", "create", "--subnet=10.80.0.0/24", "-o", "parent=eth0", "good", state=str(state))[0] == 0
    )
    with contextlib.closing(sqlite3.connect(state / DB_NAME)) as conn, conn:
        conn.execute("INSERT INTO records VALUES ('networks', 'torn', '{\"name\": \"to')")
        conn.execute("INSERT INTO records VALUES ('networks', 'shape', '{\"name\": 5}')")
        conn.execute("INSERT INTO records VALUES ('containers', 'odd', '[1, 2]')")
    out = io.StringIO()
    err = io.StringIO()
    base = ["--state-dir", str(state), "--host-netns", lab.host]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert cli.main([*base, "network", "ls"]) == 0
        assert cli.main([*base, "ps"]) == 0
        assert cli.main([*base, "network", "rm", "good"]) == 0
    assert "good" in out.getvalue()
    warnings = [r.getMessage() for r in caplog.records]  # the CLI prints these on stderr, one line each
    assert sum("moved aside" in w for w in warnings) == 3, warnings
    assert "Traceback" not in err.getvalue()


def _fake_container(lab: Lab, name: str) -> str:
    """A container record whose namespace path is a plain file (what a user's mistake leaves)."""
    netns_name = lab.prefix + name
    with contextlib.closing(sqlite3.connect(lab.state / DB_NAME)) as conn, conn:
        rec = {"name": name, "id": "f" * 64, "network": "gone", "netns": netns_name, "addresses": []}
        conn.execute("INSERT INTO records VALUES ('containers', ?, ?)", (name, json.dumps(rec)))
    ns.netns_path(netns_name).write_text("")
    return netns_name


def test_exec_into_a_plain_file_is_refused(lab: Lab) -> None:
    netns_name = _fake_container(lab, "plainfile")
    try:
        code, err = _cli(lab, "exec", "plainfile", "true")
        assert code == 1 and "is not a network namespace" in err and "Traceback" not in err, err
    finally:
        assert _cli(lab, "rm", "plainfile")[0] == 0
    assert not ns.netns_path(netns_name).exists()


def test_rm_keeps_a_users_files_in_etc_netns(lab: Lab) -> None:
    netns_name = _fake_container(lab, "etcdir")
    keep = ns.NETNS_ETC_DIR / netns_name / "mine"
    keep.mkdir(parents=True)
    try:
        code, err = _cli(lab, "rm", "etcdir")
        assert code == 0, err
        assert _cli(lab, "rm", "etcdir")[0] == 1, "the record went with the namespace"
        assert keep.is_dir(), "a directory the user made is not removed"
    finally:
        keep.rmdir()
        keep.parent.rmdir()


# --- the plugin socket -------------------------------------------------------------------------

CN, CE = "NetworkDriver.CreateNetwork", "NetworkDriver.CreateEndpoint"
RA, RP = "IpamDriver.RequestAddress", "IpamDriver.RequestPool"
POOL = "LocalIpvlan/10.60.0.0/24"
PNET = "p" * 64
PLUGIN_CASES: list[tuple[str, str, Any, str]] = [
    ("not-json", CN, b"not json", "not JSON"),
    ("json-list", CN, b"[1,2,3]", "not a JSON object"),
    ("json-null", CN, b"null", "not a JSON object"),
    ("json-string", CN, b'"x"', "not a JSON object"),
    ("deep-nesting", CN, b"[" * 100000 + b"]" * 100000, "nested too deeply"),
    ("deep-object", CN, b'{"a":' * 50000 + b"1" + b"}" * 50000, "nested too deeply"),
    ("bad-utf8", CN, b'{"NetworkID": "\xff\xfe"}', "not JSON"),
    ("network-id-missing", CN, {"Options": {}}, "NetworkID"),
    ("network-id-empty", CN, {"NetworkID": ""}, "NetworkID"),
    ("network-id-int", CN, {"NetworkID": 7, "Options": "x"}, "NetworkID"),
    ("network-id-null", CN, {"NetworkID": None}, "NetworkID"),
    ("options-string", CN, {"NetworkID": "n1", "Options": "x"}, "Options"),
    ("generic-string", CN, {"NetworkID": "n1", "Options": {"com.docker.network.generic": "x"}}, "generic"),
    (
        "ipv6-flag-string",
        CN,
        {"NetworkID": "n1", "Options": {"com.docker.network.enable_ipv6": "false"}},
        "enable_ipv6",
    ),
    ("internal-string", CN, {"NetworkID": "n1", "Options": {"com.docker.network.internal": "false"}}, "internal"),
    ("internal-int", CN, {"NetworkID": "n1", "Options": {"com.docker.network.internal": 1}}, "internal"),
    ("ipv4data-int", CN, {"NetworkID": "n2", "IPv4Data": 5}, "IPv4Data"),
    ("ipv4data-item-int", CN, {"NetworkID": "n2", "IPv4Data": [5]}, "IPv4Data[0]"),
    ("pool-int", CN, {"NetworkID": "n2", "IPv4Data": [{"Pool": 5}]}, "IPv4Data[0].Pool"),
    ("pool-missing", CN, {"NetworkID": "n2", "IPv4Data": [{"Gateway": "10.9.0.1/24"}]}, "Pool"),
    ("pool-host-bits", CN, _create_body("n3", "10.1.100.0/16"), "10.1.0.0/16"),
    (
        "gateway-garbage",
        CN,
        {"NetworkID": "n1", "IPv4Data": [{"Pool": "10.9.0.0/24", "Gateway": "garbage"}]},
        "garbage",
    ),
    ("gateway-int", CN, {"NetworkID": "n1", "IPv4Data": [{"Pool": "10.9.0.0/24", "Gateway": 5}]}, "Gateway"),
    ("mode-l9", CN, _create_body("n4", "10.9.0.0/24", ipvlan_mode="l9"), "l9"),
    ("parent-loopback", CN, _create_body("n4", "10.9.0.0/24", parent="lo"), "loopback"),
    ("unknown-option", CN, _create_body("n4", "10.9.0.0/24", frobnicate="1"), "frobnicate"),
    ("pool-of-another-network", CN, _create_body("n5", "10.61.0.0/24", parent="eth1"), "10.61.0.0/24"),
    (
        "endpoint-unknown-network",
        CE,
        {"NetworkID": "zz", "EndpointID": "e", "Interface": {"Address": "1.2.3.4/24"}},
        "zz",
    ),
    ("interface-string", CE, {"NetworkID": PNET, "EndpointID": "e", "Interface": "x"}, "Interface"),
    ("address-list", CE, {"NetworkID": "n3", "EndpointID": "e", "Interface": {"Address": ["x"]}}, "Address"),
    ("address-int", CE, {"NetworkID": PNET, "EndpointID": "e", "Interface": {"Address": 167772161}}, "Address"),
    ("address-garbage", CE, {"NetworkID": PNET, "EndpointID": "e", "Interface": {"Address": "garbage"}}, "garbage"),
    ("address-missing", CE, {"NetworkID": PNET, "EndpointID": "e", "Interface": {}}, "Address"),
    (
        "address-outside",
        CE,
        {"NetworkID": PNET, "EndpointID": "e", "Interface": {"Address": "10.99.0.5/24"}},
        "10.99.0.5",
    ),
    ("endpoint-id-int", CE, {"NetworkID": PNET, "EndpointID": 5}, "EndpointID"),
    ("join-types", "NetworkDriver.Join", {"NetworkID": None, "EndpointID": {}, "SandboxKey": 3}, "NetworkID"),
    ("join-sandbox-int", "NetworkDriver.Join", {"NetworkID": PNET, "EndpointID": "e", "SandboxKey": 3}, "SandboxKey"),
    ("join-unknown-endpoint", "NetworkDriver.Join", {"NetworkID": PNET, "EndpointID": "nosuch"}, "nosuch"),
    ("leave-missing-ids", "NetworkDriver.Leave", {}, "NetworkID"),
    ("pool-request-int", RP, {"Pool": 5}, "Pool"),
    ("pool-request-host-bits", RP, {"Pool": "10.0.0.5/24"}, "10.0.0.0/24"),
    ("pool-request-garbage", RP, {"Pool": "garbage"}, "garbage"),
    ("pool-request-v6-string", RP, {"Pool": "10.2.0.0/24", "V6": "false"}, "V6"),
    ("pool-request-sub-pool", RP, {"Pool": "10.3.0.0/24", "SubPool": "10.3.0.0/25"}, "10.3.0.0/25"),
    ("pool-request-overlap", RP, {"Pool": "10.60.0.0/25"}, "10.60.0.0/24"),
    ("pool-request-everything", RP, {"Pool": "0.0.0.0/0"}, "0.0.0.0/0"),
    ("pool-release-unknown-type", "IpamDriver.ReleasePool", {"PoolID": 5}, "PoolID"),
    ("address-pool-int", RA, {"PoolID": 5}, "PoolID"),
    ("address-pool-missing", RA, {"Address": ""}, "PoolID"),
    ("address-pool-unknown", RA, {"PoolID": "LocalIpvlan/10.99.0.0/24"}, "10.99.0.0/24"),
    ("address-request-int", RA, {"PoolID": POOL, "Address": 167772161}, "Address"),
    ("address-request-garbage", RA, {"PoolID": POOL, "Address": "nope"}, "nope"),
    ("address-request-outside", RA, {"PoolID": POOL, "Address": "10.61.0.9"}, "10.61.0.9"),
    ("address-release-missing", "IpamDriver.ReleaseAddress", {"PoolID": POOL}, "Address"),
]


@pytest.mark.parametrize(("method", "body", "culprit"), [pytest.param(m, b, c, id=i) for i, m, b, c in PLUGIN_CASES])
def test_plugin_refuses_with_an_error_reply(lab: Lab, method: str, body: Any, culprit: str) -> None:
    before = lab.snapshot()
    status, reply = _post(lab, method, body)
    assert isinstance(reply, dict) and isinstance(reply.get("Err"), str), reply
    if method.startswith("IpamDriver."):
        assert reply.get("Error") == reply["Err"], "libnetwork reads an IPAM driver's error from 'Error'"
    assert culprit in reply["Err"], f"the error should name {culprit!r}: {reply['Err']}"
    assert "Traceback" not in reply["Err"] and status in (200, 400)
    assert lab.snapshot() == before, "a refused request must leave links, namespaces and state as they were"


HTTP_CASES: list[tuple[str, bytes, int, str]] = [
    (
        "content-length-word",
        b"POST /Plugin.Activate HTTP/1.1\r\nHost: p\r\nContent-Length: abc\r\n\r\n{}",
        400,
        "malformed HTTP",
    ),
    (
        "content-length-huge",
        b"POST /NetworkDriver.CreateNetwork HTTP/1.1\r\nHost: p\r\nContent-Length: 1000000000000\r\n\r\n{}",
        413,
        "over",
    ),
    (
        "body-over-limit",
        b"POST /NetworkDriver.CreateNetwork HTTP/1.1\r\nHost: p\r\nContent-Length: 600000\r\n\r\n" + b" " * 600000,
        413,
        "over",
    ),
    ("get-method", b"GET /Plugin.Activate HTTP/1.1\r\nHost: p\r\n\r\n", 405, "POST"),
    ("not-http", b"HELLO THERE\r\n\r\n", 400, "malformed HTTP"),
    (
        "unknown-method",
        b"POST /NetworkDriver.Teleport HTTP/1.1\r\nHost: p\r\nContent-Length: 2\r\n\r\n{}",
        404,
        "Teleport",
    ),
    (
        "half-sent-body",
        b'POST /NetworkDriver.CreateNetwork HTTP/1.1\r\nHost: p\r\nContent-Length: 100\r\n\r\n{"Netw',
        408,
        "not received",
    ),
]


@pytest.mark.parametrize(("data", "status", "culprit"), [pytest.param(d, s, c, id=i) for i, d, s, c in HTTP_CASES])
def test_plugin_answers_broken_http(lab: Lab, data: bytes, status: int, culprit: str) -> None:
    before = lab.snapshot()
    got, reply = _raw(lab, data)
    assert got == status and culprit in reply["Err"], (got, reply)
    assert lab.snapshot() == before
    assert _post(lab, "Plugin.Activate", {})[1]["Implements"], "the plugin still answers"
