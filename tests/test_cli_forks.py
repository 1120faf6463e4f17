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


def test_state_written_by_one_command_is_read_by_the_next(cli: Zygote, tmp_path: Path) -> None:
    state = tmp_path / "state"
    listed = cli.run(["--state-dir", str(state), "network", "ls"])
    assert listed.returncode == 0, listed.stderr
    assert "NETWORK ID" in listed.stdout


def test_a_command_past_its_timeout_is_killed(cli: Zygote, tmp_path: Path) -> None:
    serve = ["--state-dir", str(tmp_path / "state"), "serve", "--socket", str(tmp_path / "plugin.sock")]
    with pytest.raises(subprocess.TimeoutExpired):
        cli.run(serve, timeout=3)  # a plugin server never returns by itself
