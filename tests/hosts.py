"""Test hosts shared by the driver's tests: a namespace playing the docker host, and a plugin serving it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ipvlan_driver import netns as ns
from ipvlan_driver.driver import Driver
from ipvlan_driver.netlink import Netlink
from ipvlan_driver.plugin import PluginServer


@contextlib.contextmanager
def docker_host(name: str, uplinks: Sequence[str] = ("eth0",)) -> Iterator[str]:
    """Namespace `name` with veth uplinks, all up; it and every namespace named after it go at the end."""
    ns.create(name)
    try:
        with Netlink(name) as nl:
            nl.set_up("lo")
            for i, link in enumerate(uplinks):
                nl.add_veth(link, f"peer{i}")
                nl.set_up(link)
                nl.set_up(f"peer{i}")
        yield name
    finally:
        for space in ns.list_names():
            if space.startswith(name):
                ns.remove(space)


@contextlib.contextmanager
def serving(path: Path, driver: Driver, **limits: Any) -> Iterator[PluginServer]:
    """Our plugin on `path`, in a thread of this process, stopped and its socket removed at the end."""
    server = PluginServer(path, driver, **limits)
    threading.Thread(target=server.serve_forever, name="plugin", daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
