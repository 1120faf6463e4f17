"""Deploy an example on a fresh topology through a backend: the docs' commands, in the docs' order."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import netnsutil as ns

from . import topology
from .backends.base import Attached, Backend, BackendFactory, HostContext
from .bounded import NoAnswer, call_all, call_within, patience
from .examples import Example

_counter = itertools.count()
T = TypeVar("T")
HUNG_PATIENCE = 20.0


def worker_prefix() -> str:
    """What every namespace this process makes starts with (`gw3` -> ic3p<pid>)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    return f"ic{worker}p{os.getpid() % 1000}n"


def unique_prefix() -> str:
    """Namespace prefix unique per test and per xdist worker."""
    return f"{worker_prefix()}{next(_counter)}"


class DeployError(AssertionError):
    pass


@dataclass
class Deployment:
    example: Example
    topo: topology.Topology
    backend: Backend
    attached: dict[str, Attached] = field(default_factory=dict)
    hung: bool = False  # a call never returned: teardown waits only briefly for a driver known to be stuck
    observed: dict[str, Any] = field(default_factory=dict)  # what read-only tests share (test_ping's matrix)

    def calls(self, items: list[T], fn: Callable[[T], Any]) -> list[Any]:
        """fn on every item at once through the backend (see bounded.call_all); notes a hang."""
        results = call_all(items, fn, patience(self.backend))
        self.hung = self.hung or any(isinstance(r, NoAnswer) for r in results)
        return results

    def container(self, name: str) -> Attached:
        try:
            return self.attached[name]
        except KeyError:
            raise DeployError(f"{self.example.id}: no container {name!r} was started") from None

    def address_of(self, name: str, family: int) -> str:
        from .checks import global_addresses

        for cidr in global_addresses(self.container(name).netns):
            if (":" in cidr) == (family == 6):
                return cidr.split("/")[0]
        raise DeployError(f"{self.example.id}: container {name!r} has no IPv{family} address")


@contextlib.contextmanager
def lab(
    example: Example, factory: BackendFactory, prefix: str | None = None, options: dict[str, Any] | None = None
) -> Iterator[Deployment]:
    """A topology with a backend attached, nothing deployed yet; everything undone on exit."""
    prefix = prefix or unique_prefix()
    workdir = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    # a backend whose daemon lives in one namespace for the whole run (Docker) names it
    shared_host = factory.shared_host_netns(options or {})
    with topology.build(prefix, example.upstream, host=shared_host) as topo:
        topo.stack.callback(shutil.rmtree, workdir, True)
        host = HostContext(netns=topo.host, workdir=workdir, prefix=f"{prefix}-c-", options=options or {})
        backend = factory(host)
        for command in example.teardown:
            # the docs' own cleanup runs after the networks are gone
            topo.stack.callback(_quiet, topo.host_command, command)
        dep = Deployment(example, topo, backend)
        topo.stack.callback(_close, dep, host.prefix)
        yield dep


def _close(dep: Deployment, container_prefix: str) -> None:
    within = HUNG_PATIENCE if dep.hung else patience(dep.backend)
    try:
        call_within(dep.backend.close, within, f"{dep.backend.name} teardown")
    except NoAnswer:
        # the driver under test is hung: the suite removes what it can see so the next lab starts clean
        for name in ns.list_names():
            if name.startswith(container_prefix):
                ns.remove(name)
        raise


def _quiet(fn: object, *args: object) -> None:
    with contextlib.suppress(Exception):
        fn(*args)  # type: ignore[operator]


def run_setup(dep: Deployment) -> None:
    """The docs' manual host steps (`ip link add link eth0 name eth0.40 type vlan id 40`, ...)."""
    for command in dep.example.setup:
        dep.topo.host_command(command)


def deploy_networks(dep: Deployment, setup: bool = True) -> None:
    if setup:
        run_setup(dep)
    for step in dep.example.networks:
        try:
            dep.backend.create_network(step.request)
        except Exception as exc:
            raise DeployError(f"{dep.example.id}: `{step.command}` failed: {exc}") from exc


def deploy_containers(dep: Deployment) -> None:
    for step in dep.example.containers:
        try:
            dep.attached[step.request.name] = dep.backend.run(step.request)
        except Exception as exc:
            raise DeployError(f"{dep.example.id}: `{step.command}` failed: {exc}") from exc


@contextlib.contextmanager
def deployed(example: Example, factory: BackendFactory, options: dict[str, Any] | None = None) -> Iterator[Deployment]:
    with lab(example, factory, options=options) as dep:
        deploy_networks(dep)
        deploy_containers(dep)
        yield dep
