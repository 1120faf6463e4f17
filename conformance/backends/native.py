"""`native`: our reference driver, called in-process."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from ipvlan_driver.driver import Driver, DriverConfig
from ipvlan_driver.errors import DriverError, NotFoundError
from ipvlan_driver.options import network_spec

from ..examples import ContainerRequest, NetworkRequest
from .base import ALL_CAPABILITIES, Attached, BackendRefused, BaseBackend, HostContext, our_version


class NativeBackend(BaseBackend):
    name = "native"
    capabilities = ALL_CAPABILITIES | {"restart"}

    @staticmethod
    def describe(options: Mapping[str, Any]) -> dict[str, str]:
        return {"driver": our_version()}

    driver_factory = Driver  # mutant drivers replace this

    def __init__(self, host: HostContext) -> None:
        self.host = host
        self.config = DriverConfig(
            state_dir=host.workdir / "state", host_netns=host.netns, container_prefix=host.prefix
        )
        self.driver = self.driver_factory(self.config)

    def restart_driver(self) -> None:
        """A new process would have nothing but the state on disk: a fresh driver on the same state."""
        self.driver = self.driver_factory(self.config)
        self.driver.restore()

    def network_members(self, network: str) -> set[str]:
        self.driver.get_network(network)  # a missing network is an error, as for every backend
        return set(self.driver.endpoints(network))

    def create_network(self, req: NetworkRequest) -> None:
        try:
            if req.ip_ranges or req.aux_addresses:
                # the driver's own IPAM takes whole subnets (its CLI has no such flags either)
                raise BackendRefused(f"network {req.name}: ipvlan-driver has no --ip-range or --aux-address")
            spec = network_spec(
                req.name,
                subnets=req.subnets,
                gateways=req.gateways,
                options=req.opts,
                internal=req.internal,
                ipv6=req.ipv6,
            )
            self.driver.create_network(spec)
        except DriverError as exc:
            raise BackendRefused(str(exc)) from exc

    def remove_network(self, name: str) -> None:
        try:
            self.driver.delete_network(name)
        except DriverError as exc:
            raise BackendRefused(str(exc)) from exc

    def run(self, req: ContainerRequest) -> Attached:
        try:
            c = self.driver.run(req.network, name=req.name, ip=req.ip, ip6=req.ip6)
        except DriverError as exc:
            raise BackendRefused(str(exc)) from exc
        return Attached(c.name, c.netns)

    def remove(self, name: str) -> None:
        try:
            self.driver.remove_container(name)
        except DriverError as exc:
            raise BackendRefused(str(exc)) from exc

    def exec(self, name: str, argv: Sequence[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
        prepare = self.driver.exec_preparer(name)
        return subprocess.run(
            list(argv), preexec_fn=prepare, capture_output=True, text=True, timeout=timeout, check=False
        )

    def close(self) -> None:
        for name in self.driver.container_names():
            with contextlib.suppress(NotFoundError):
                self.driver.remove_container(name)
        for name in self.driver.network_names():
            self.driver.delete_network(name)
