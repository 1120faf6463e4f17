"""ci/engines.py (what a column runs) and the netavark backend's Podman-like IPAM, on the host."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from conformance.backends.base import BackendRefused
from conformance.backends.netavark import _Pool, command
from tests.civm import load_engines

engines = load_engines()


@pytest.mark.parametrize(
    ("name", "backend", "args"),
    [
        ("native", "native", ("--backend=native",)),
        ("docker", "docker", ("--backend=docker",)),
        ("docker-20.10", "docker", ("--backend=docker",)),
        ("docker-20.10:ipvlan-conformance", "docker", ("--backend=docker", "--docker-driver=ipvlan-conformance")),
        ("cni", "cni", ("--backend=cni",)),
    ],
)
def test_system_columns(name: str, backend: str, args: tuple[str, ...]) -> None:
    col = engines.column(name)
    assert (col.backend, col.pytest_args, col.engine) == (backend, args, None)


def test_fetched_engines_take_their_root() -> None:
    col = engines.column("docker-26.1:ipvlan-conformance")
    root = engines.ENGINES["docker-26.1"].root
    assert col.pytest_args == ("--backend=docker", f"--docker-root={root}", "--docker-driver=ipvlan-conformance")
    assert engines.column("netavark").pytest_args == (
        "--backend=netavark",
        f"--netavark-root={engines.ENGINES['netavark'].root}",
    )


def test_mirror_is_the_hosts(tmp_path: Path) -> None:
    deb822 = tmp_path / "debian.sources"
    deb822.write_text("Types: deb\n# a comment\nURIs: http://mirror.example/debian/\nSuites: bookworm\n")
    legacy = tmp_path / "sources.list"
    legacy.write_text("deb [arch=amd64] http://old.example/debian bookworm main\n")
    assert engines.mirror((deb822, legacy)) == "http://mirror.example/debian"
    assert engines.mirror((tmp_path / "absent", legacy)) == "http://old.example/debian"
    assert engines.mirror((tmp_path / "absent",)) == engines.DEFAULT_MIRROR


def test_an_unpacked_netavark_runs_under_its_own_loader(tmp_path: Path) -> None:
    assert command(str(tmp_path)) == [str(tmp_path / "usr/lib/podman/netavark")]
    (tmp_path / "usr/lib64").mkdir(parents=True)
    (tmp_path / "usr/lib64/ld-linux-x86-64.so.2").touch()
    argv = command(str(tmp_path))
    assert argv[0].endswith("ld-linux-x86-64.so.2")
    assert argv[1:3] == ["--library-path", str(tmp_path / "usr/lib/x86_64-linux-gnu")]


def _pool(cidr: str, gateway: str | None) -> _Pool:
    return _Pool(ipaddress.ip_network(cidr), ipaddress.ip_address(gateway) if gateway else None)


def test_podman_ipam_skips_the_gateway_and_goes_on_after_the_last() -> None:
    pool = _pool("10.1.0.0/29", "10.1.0.1")
    got = [str(pool.take(f"c{i}", None)) for i in range(3)]
    assert got == ["10.1.0.2", "10.1.0.3", "10.1.0.4"]
    pool.release("c0")
    assert str(pool.take("c3", None)) == "10.1.0.5", "Podman hands out the next address, not the freed one"
    assert str(pool.take("c4", None)) == "10.1.0.6"
    assert str(pool.take("c5", None)) == "10.1.0.2", "then wraps to the freed one (.7 is broadcast)"
    with pytest.raises(BackendRefused, match="failed to find free IP"):
        pool.take("c6", None)


def test_podman_ipam_refuses_a_taken_static_address() -> None:
    pool = _pool("2001:db8::/126", None)
    assert str(pool.take("a", ipaddress.ip_address("2001:db8::3"))) == "2001:db8::3"
    with pytest.raises(BackendRefused, match="already allocated to a"):
        pool.take("b", ipaddress.ip_address("2001:db8::3"))
    assert [str(pool.take(n, None)) for n in "cd"] == ["2001:db8::1", "2001:db8::2"]
