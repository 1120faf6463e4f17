"""The protocol every backend implements, and what the suite hands it."""

from __future__ import annotations

import importlib.metadata
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import netnsutil as ns

from ..examples import ContainerRequest, NetworkRequest

# Behaviours a backend may lack; fixtures' `requires` name them.
# vlan: 802.1Q links work (a pre-made parent); vlan-create: the driver makes `name.vid` parents itself;
# dummy: a dummy parent when there is none; default-pool: a subnet when none is given.
ALL_CAPABILITIES = frozenset(
    {"vlan", "vlan-create", "ipv6", "l3s", "flag", "dummy", "names", "internal", "default-pool"}
)


class BackendRefused(Exception):
    """The driver under test refused a request; the message is the driver's own."""


@dataclass(frozen=True)
class HostContext:
    """The docker host a backend works on: a namespace of the test topology, private scratch space."""

    netns: str
    workdir: Path
    prefix: str  # unique per test and worker; container namespaces start with it
    options: Mapping[str, Any] = field(default_factory=dict)  # the suite's command-line options


@dataclass(frozen=True)
class Attached:
    """Where a container's interface can be observed: its namespace and interface name."""

    name: str
    netns: str
    ifname: str = "eth0"


class Backend(Protocol):
    name: str
    capabilities: frozenset[str]

    def create_network(self, req: NetworkRequest) -> None: ...

    def remove_network(self, name: str) -> None: ...

    def run(self, req: ContainerRequest) -> Attached: ...

    def remove(self, name: str) -> None: ...

    def exec(self, name: str, argv: Sequence[str], timeout: float = 30) -> subprocess.CompletedProcess[str]: ...

    def close(self) -> None:
        """Remove whatever is left (containers, then networks); called in the topology's finally."""


@runtime_checkable
class Restartable(Protocol):
    """The driver can be restarted with containers running (our plugin process, dockerd...)."""

    def restart_driver(self) -> None: ...


@runtime_checkable
class Killable(Protocol):
    """The driver can be killed half-way through a run; the backend restarts it and rolls back."""

    def run_killed(self, req: ContainerRequest) -> Attached:
        """Start `req`, kill the driver mid-way, restart it; raise BackendRefused as the run failed."""
        ...


@runtime_checkable
class Listable(Protocol):
    """The driver (or its engine) can list a network's containers (`docker network inspect`)."""

    def network_members(self, network: str) -> set[str]: ...


# Optional, on the factory (see DockerBackend): `supported(options) -> frozenset[str]` (capabilities that
# depend on what is installed), `describe(options) -> dict[str, str]` (versions for the report),
# `shared_host_netns(options) -> str` and `shutdown()` (a daemon living for the whole run).


def run_in_netns(netns: str, argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """A command in a container's namespace, for backends whose containers are bare namespaces (CNI,
    netavark): the container's `exec`."""
    return subprocess.run(
        list(argv),
        preexec_fn=ns.exec_preparer(netns),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def stop_process(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM, as a service manager stops a daemon; SIGKILL if it is still there after `grace` seconds."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def our_version() -> str:
    """This project's version: the driver behind the native, cli and plugin backends.

    Read from the installed distribution, not from `ipvlan_driver`, which the suite does not import."""
    return f"ipvlan-conformance {importlib.metadata.version('ipvlan-conformance')}"


def network_refs(backend: Backend, name: str) -> tuple[str, ...]:
    """How the driver may name a network in its messages: by its name, or by the engine's id for it.

    Docker hands a remote driver only the network's id, never its name, so a plugin can only name a
    network by id. A backend with such ids offers an optional `network_id(name) -> str | None`.
    """
    lookup = getattr(backend, "network_id", None)
    found = lookup(name) if callable(lookup) else None
    return (name, str(found)) if found else (name,)


class BackendFactory(Protocol):
    def __call__(self, host: HostContext) -> Backend: ...
