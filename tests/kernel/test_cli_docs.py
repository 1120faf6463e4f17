"""Every documented command, with `docker` replaced by `ipvlan-driver`, run verbatim through the CLI.

`docker run -it --rm alpine /bin/sh` really starts a shell (one per "terminal", kept open as the docs do);
the test types `ip addr` / `ip route` into it and compares with what the docs show. Each command is a
process of its own, forked from a zygote that has imported the CLI once (tests/cli_forks.py): under
emulation, Python's start-up was most of this module's time.
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.examples import Example, load_examples
from conformance.topology import build
from tests.cli_forks import Forked, Zygote, zygote

pytestmark = pytest.mark.kernel
EXAMPLES = load_examples()
MARK = "__ipvlan_conformance_end__"


def _argv(command: str, host: str, tmp: Path, prefix: str) -> list[str]:
    words = shlex.split(command)
    assert words[0] == "docker", command
    return [
        "--state-dir",
        str(tmp / "state"),
        "--host-netns",
        host,
        "--netns-prefix",
        prefix,
        *words[1:],
    ]


@pytest.fixture(scope="module")
def cli() -> Iterator[Zygote]:
    with zygote() as z:
        yield z


class Shell:
    """One documented `docker run -it ... /bin/sh`, kept open like a terminal."""

    def __init__(self, proc: Forked) -> None:
        self.proc = proc

    def type(self, line: str) -> list[str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{line}; echo {MARK}\n")
        self.proc.stdin.flush()
        out = []
        for got in self.proc.stdout:
            if got.strip() == MARK:
                return out
            out.append(got.rstrip("\n"))
        raise AssertionError(f"the shell ended early: {out}")

    def close(self) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()  # the terminal closes: sh exits, and --rm removes the container
        try:
            return self.proc.wait(60)
        finally:
            self.proc.stdout.close()


@pytest.mark.parametrize("example", [pytest.param(e, id=e.id) for e in EXAMPLES.values()])
def test_documented_commands_through_the_cli(example: Example, tmp_path: Path, cli: Zygote) -> None:
    prefix = f"cli{abs(hash(example.id)) % 10000}"
    with build(prefix, example.upstream) as topo:
        for command in example.setup:
            topo.host_command(command)
        shells: list[Shell] = []
        by_name: dict[str, Shell] = {}
        detached: list[str] = []
        try:
            for step in example.networks:
                command = step.command
                proc = cli.run(_argv(command, topo.host, tmp_path, f"{prefix}-"))
                assert proc.returncode == 0, f"`{command}` failed: {proc.stderr}"
                assert len(proc.stdout.strip()) == 64, f"`{command}` should print the network id: {proc.stdout}"
            for cstep in example.containers:
                command, req, expect = cstep.command, cstep.request, cstep.expect
                argv = _argv(command, topo.host, tmp_path, f"{prefix}-")
                if req.name and "--name" not in command and not any(a.startswith("--name") for a in argv):
                    argv.insert(argv.index("run") + 1, f"--name={req.name}")
                words = shlex.split(command)
                image_at = next(i for i, w in enumerate(words) if w == "alpine")
                flags = words[2:image_at]
                if words[image_at + 1 :] != ["/bin/sh"]:
                    # `docker run ... alpine ping -c 2 10.1.214.10`: the documented test is the command's success
                    done = cli.run(argv)
                    assert done.returncode == 0, f"`{command}` failed: {done.stdout}{done.stderr}"
                    continue
                if any(f.startswith("-") and not f.startswith("--") and "d" in f for f in flags):
                    # `-itd`: detached; the docs then attach with `docker exec -it NAME /bin/sh`
                    done = cli.run(argv)
                    assert done.returncode == 0 and len(done.stdout.strip()) == 64, f"`{command}`: {done.stderr}"
                    detached.append(req.name)
                    argv = _argv(f"docker exec -it {req.name} /bin/sh", topo.host, tmp_path, f"{prefix}-")
                shell = Shell(cli.popen(argv))
                shells.append(shell)
                by_name[req.name] = shell
                lines = shell.type("ip -o addr show dev eth0 scope global")
                seen = sorted(line.split()[3] for line in lines if " inet" in line)
                assert seen == sorted(expect.addresses or ()), (
                    f"`{command}`: `ip addr` shows {seen}; the docs say {expect.addresses}\n" + "\n".join(lines)
                )
                for family in (4, 6):
                    documented = expect.routes_for(family)
                    if documented is None:
                        continue
                    shown = shell.type(f"ip -{family} route show table main")
                    got = sorted(_normalize(line) for line in shown if not line.startswith(("fe80", "multicast")))
                    assert got == sorted(documented), f"`{command}`: `ip -{family} route` shows {shown}"
            for spec in example.pings:
                if not spec.get("by_name"):
                    continue
                src = by_name[str(spec["from"])]
                out = src.type(f"ping -c 1 -W 3 {spec['to']} >/dev/null 2>&1; echo rc=$?")
                assert out[-1] == "rc=0", f"`ping -c 4 {spec['to']}` by name failed in {spec['from']}: {out}"
        finally:
            codes = [s.close() for s in shells]
            for name in detached:
                cli.run(_argv(f"docker rm {name}", topo.host, tmp_path, f"{prefix}-"))
            for step in example.networks:
                cli.run(_argv(f"docker network rm {step.request.name}", topo.host, tmp_path, f"{prefix}-"))
        assert codes == [0] * len(codes), f"the shells' `--rm` exits: {codes}"
        left = sorted(p.name for p in (tmp_path / "state" / "containers").glob("*.json"))
        assert left == [], f"--rm should have removed every container: {left}"


def _normalize(line: str) -> str:
    words = line.split()
    dst = words[0]
    if dst != "default":
        dst = str(ipaddress.ip_network(dst, strict=False))
    return f"{dst} via {words[2]}" if len(words) > 2 and words[1] == "via" else dst
