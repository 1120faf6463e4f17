"""The protocol every backend implements, and what the suite hands it."""

from __future__ import annotations

import importlib.metadata
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

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


DEFAULT_PATIENCE = 300.0  # seconds for a batch of calls; 50 concurrent runs of our driver take well under a minute


@dataclass(frozen=True)
class Option:
    """A command-line option a backend declares for itself (`--docker-root`); its value reaches the backend
    as HostContext.options[dest] and the class hooks' `options[dest]`."""

    flag: str
    help: str
    default: str | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


class BaseBackend:
    """What a backend is: the verbs every backend implements, and every hook a backend may offer with the
    default it gets by not overriding it. A backend subclasses this; the suite calls hooks, never probes.

    The class methods are asked of the backend's class (the factory the suite resolved) before or after
    any lab exists; `options` holds the values of every backend's declared OPTIONS, by dest."""

    name: str = "unnamed"
    capabilities: frozenset[str] = ALL_CAPABILITIES  # the fixtures' `requires` it meets; supported() may narrow
    patience: float = DEFAULT_PATIENCE
    OPTIONS: ClassVar[tuple[Option, ...]] = ()  # its own command-line options

    def __init__(self, host: HostContext) -> None:
        self.host = host

    # the verbs; a backend implements them all
    def create_network(self, req: NetworkRequest) -> None:
        raise NotImplementedError(f"backend {self.name} cannot create networks")

    def remove_network(self, name: str) -> None:
        raise NotImplementedError(f"backend {self.name} cannot remove networks")

    def run(self, req: ContainerRequest) -> Attached:
        raise NotImplementedError(f"backend {self.name} cannot run containers")

    def remove(self, name: str) -> None:
        raise NotImplementedError(f"backend {self.name} cannot remove containers")

    def exec(self, name: str, argv: Sequence[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
        raise NotImplementedError(f"backend {self.name} cannot exec in containers")

    def close(self) -> None:
        """Remove whatever is left (containers, then networks); called in the topology's finally."""

    # what the resilience tier asks, of backends whose capabilities say they can
    def restart_driver(self) -> None:
        """("restart") Restart the driver with containers running (our plugin process, dockerd...)."""
        raise NotImplementedError(f"backend {self.name} cannot restart its driver")

    def run_killed(self, req: ContainerRequest) -> Attached:
        """("kill") Start `req`, kill the driver mid-way, restart it; raise BackendRefused as the run failed."""
        raise NotImplementedError(f"backend {self.name} cannot kill its driver mid-run")

    def network_members(self, network: str) -> set[str] | None:
        """The containers the driver (or its engine) lists on `network`; None: it cannot list them."""
        return None

    # the hooks
    @classmethod
    def supported(cls, options: Mapping[str, Any]) -> frozenset[str]:
        """The capabilities this run has, when they depend on what is installed (a Docker release)."""
        return cls.capabilities

    @classmethod
    def describe(cls, options: Mapping[str, Any]) -> dict[str, str]:
        """Versions for the report; asked at the end of the run, before shutdown."""
        return {}

    @classmethod
    def shared_host_netns(cls, options: Mapping[str, Any]) -> str | None:
        """The namespace a daemon living for the whole run works in (Docker's); None: one per lab."""
        return None

    @classmethod
    def shutdown(cls) -> None:
        """End of the run: stop what lives for the whole run (a daemon), before the leak check."""

    def network_id(self, name: str) -> str | None:
        """The engine's id for network `name` when the driver only knows networks by id; None: by name."""
        return None


Backend = BaseBackend  # what a lab holds: an instance of a backend class
BackendFactory = type[BaseBackend]  # a backend class: called with a HostContext per lab, asked the hooks above


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
    network by id: such a backend's `network_id(name)` says which.
    """
    found = backend.network_id(name)
    return (name, found) if found else (name,)
