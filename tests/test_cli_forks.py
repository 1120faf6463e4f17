"""The CLI fork server the kernel tests run documented commands through: every command is a process of its
own, gets the caller's stdio, and exits with what the CLI's main returned."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_forks import Zygote, zygote


@pytest.fixture(scope="module")
def cli() -> Iterator[Zygote]:
    with zygote() as z:
        yield z


def test_run_captures_output_and_exit_status(cli: Zygote) -> None:
    done = cli.run(["--help"])
    assert done.returncode == 0 and "usage: ipvlan-driver" in done.stdout and done.stderr == ""
    bad = cli.run(["network", "frobnicate"])
    assert bad.returncode == 2 and "invalid choice" in bad.stderr and bad.stdout == ""


def test_each_command_is_a_process_of_its_own(cli: Zygote, tmp_path: Path) -> None:
    pids = set()
    for _ in range(3):
        proc = cli.popen(["--help"])
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()
        assert "usage:" in proc.stdout.read()
        proc.stdout.close()
        assert proc.wait(30) == 0
        pids.add(proc.pid)
    assert len(pids) == 3 and os.getpid() not in pids


def test_a_command_writes_its_state_dir_on_disk(cli: Zygote, tmp_path: Path) -> None:
    state = tmp_path / "state"
    listed = cli.run(["--state-dir", str(state), "network", "ls"])
    assert listed.returncode == 0, listed.stderr
    assert "NETWORK ID" in listed.stdout
    # the child, not this process, made it: what the next command (another child) will open
    assert state.is_dir() and (state.stat().st_mode & 0o777) == 0o700


def test_a_command_past_its_timeout_is_killed(cli: Zygote, tmp_path: Path) -> None:
    serve = ["--state-dir", str(tmp_path / "state"), "serve", "--socket", str(tmp_path / "plugin.sock")]
    with pytest.raises(subprocess.TimeoutExpired):
        cli.run(serve, timeout=3)  # a plugin server never returns by itself
    held = cli.popen(["--state-dir", str(tmp_path / "state2"), "serve", "--socket", str(tmp_path / "p2.sock")])
    with pytest.raises(subprocess.TimeoutExpired):
        held.wait(2)
    held.kill()
    assert held.wait(30) == -9  # the zygote reports the SIGKILL as Popen would
    assert held.stdin is not None and held.stdout is not None
    held.stdin.close()
    held.stdout.close()
