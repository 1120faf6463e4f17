"""The CLI's face: docker-like help, and every refusal as one `Error:` line and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "ipvlan_driver.cli", "--state-dir", str(tmp_path / "state"), *args]
    return subprocess.run(argv, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("args", [(), ("network",), ("run",), ("network", "create"), ("exec",)])
def test_help_lists_commands(tmp_path: Path, args: tuple[str, ...]) -> None:
    proc = cli(tmp_path, *args, "--help")
    assert proc.returncode == 0
    assert "usage: ipvlan-driver" in proc.stdout


def test_top_level_help_reads_like_docker(tmp_path: Path) -> None:
    out = cli(tmp_path, "--help").stdout
    for command in ("network", "run", "exec", "rm", "ps", "restore"):
        assert command in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("network", "create", "--subnet=10.1.100.0/16", "--gateway=10.1.100.1", "-o", "parent=eth0.30", "n30"),
            "10.1.0.0/16",
        ),
        (("network", "create", "-d", "macvlan", "n"), 'plugin "macvlan" not found'),
        (("network", "create", "-o", "ipvlan_mode=l4", "n"), "l4"),
        (("network", "create", "-o", "ipvlan_flag=loud", "n"), "loud"),
        (("network", "create", "-o", "parent=lo", "n"), "loopback"),
        (("network", "create", "-o", "parentlo", "n"), "parentlo"),
        (("network", "create", "--gateway=192.168.9.1", "--subnet=192.168.1.0/24", "n"), "192.168.9.1"),
        (("network", "rm", "nosuchnet"), "network nosuchnet not found"),
        (("network", "inspect", "nosuchnet"), "network nosuchnet not found"),
        (("rm", "nosuchcontainer"), "no such container: nosuchcontainer"),
        (("run", "--net=nosuchnet", "-d", "alpine"), "network nosuchnet not found"),
    ],
    ids=lambda v: "-".join(v) if isinstance(v, tuple) else None,
)
def test_refusals_are_one_clear_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    proc = cli(tmp_path, *args)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("Error: "), proc.stderr
    assert message in proc.stderr


def test_usage_errors_exit_2_without_traceback(tmp_path: Path) -> None:
    proc = cli(tmp_path, "run", "alpine")
    assert proc.returncode == 2
    assert "--net" in proc.stderr and "Traceback" not in proc.stderr


def test_empty_state_lists_nothing(tmp_path: Path) -> None:
    assert cli(tmp_path, "network", "ls").stdout.splitlines() == ["NETWORK ID    NAME                DRIVER    SCOPE"]
    assert len(cli(tmp_path, "ps").stdout.splitlines()) == 1
