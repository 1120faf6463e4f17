"""`cli`: our `ipvlan-driver` command, one subprocess per docker command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from ..examples import ContainerRequest, NetworkRequest
from .base import ALL_CAPABILITIES, Attached, BackendRefused, BaseBackend, HostContext, our_version


class CliBackend(BaseBackend):
    name = "cli"
    patience = 900.0  # one Python process per verb: 50 of them at once are slow in the TCG VM
    capabilities = ALL_CAPABILITIES

    @staticmethod
    def describe(options: Mapping[str, Any]) -> dict[str, str]:
        return {"driver": our_version()}

    def __init__(self, host: HostContext) -> None:
        self.host = host
        self.base = [
            sys.executable,
            "-m",
            "ipvlan_driver.cli",
            "--state-dir",
            str(host.workdir / "state"),
            "--host-netns",
            host.netns,
            "--netns-prefix",
            host.prefix,
        ]

    def _run(self, *args: str) -> str:
        argv = [*self.base, *args]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=os.environ.copy())
        if proc.returncode != 0:
            msg = proc.stderr.strip() or proc.stdout.strip()
            if "Traceback" in msg:
                raise AssertionError(f"ipvlan-driver crashed: {' '.join(args)}\n{msg}")
            raise BackendRefused(msg.removeprefix("Error: "))
        return proc.stdout

    def create_network(self, req: NetworkRequest) -> None:
        args = ["network", "create", "-d", "ipvlan"]
        args += [f"--subnet={s}" for s in req.subnets]
        args += [f"--gateway={g}" for g in req.gateways]
        args += [f"--ip-range={r}" for r in req.ip_ranges]  # the CLI judges flags it lacks, as docker's would
        args += [f"--aux-address={k}={v}" for k, v in req.aux_addresses]
        args += [x for k, v in req.options for x in ("-o", f"{k}={v}")]
        args += ["--internal"] if req.internal else []
        args += ["--ipv6"] if req.ipv6 else []
        self._run(*args, req.name)

    def remove_network(self, name: str) -> None:
        self._run("network", "rm", name)

    def run(self, req: ContainerRequest) -> Attached:
        args = ["run", f"--net={req.network}", f"--name={req.name}", "-d"]
        args += [f"--ip={req.ip}"] if req.ip else []
        args += [f"--ip6={req.ip6}"] if req.ip6 else []
        self._run(*args)
        return Attached(req.name, self.host.prefix + req.name)

    def remove(self, name: str) -> None:
        self._run("rm", name)

    def exec(self, name: str, argv: Sequence[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.base, "exec", name, *argv], capture_output=True, text=True, timeout=timeout, check=False
        )

    def close(self) -> None:
        out = self._run("ps")
        for line in out.splitlines()[1:]:
            self._run("rm", line.split()[1])
        out = self._run("network", "ls")
        for line in out.splitlines()[1:]:
            self._run("network", "rm", line.split()[1])
