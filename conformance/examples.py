"""Documented examples as data: load `fixtures/*.yaml` and turn the docs' docker commands into requests."""

from __future__ import annotations

import fnmatch
import shlex
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ipvlan_driver.model import NetworkSpec
from ipvlan_driver.options import network_spec

from . import yamlfile
from .data import FIXTURES


@dataclass(frozen=True)
class NetworkRequest:
    name: str
    subnets: tuple[str, ...] = ()
    gateways: tuple[str, ...] = ()
    options: tuple[tuple[str, str], ...] = ()
    internal: bool = False
    ipv6: bool = False

    @property
    def opts(self) -> dict[str, str]:
        return dict(self.options)

    def spec(self) -> NetworkSpec:
        """The request validated the way our driver does (a DriverError says what is wrong)."""
        return network_spec(
            self.name,
            subnets=self.subnets,
            gateways=self.gateways,
            options=self.opts,
            internal=self.internal,
            ipv6=self.ipv6,
        )


@dataclass(frozen=True)
class ContainerRequest:
    name: str
    network: str
    ip: str | None = None
    ip6: str | None = None


@dataclass(frozen=True)
class DocRef:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Example:
    id: str
    title: str
    section: str
    doc: DocRef
    raw: dict[str, Any]
    networks: list[tuple[str, NetworkRequest, dict[str, Any]]] = field(default_factory=list)
    containers: list[tuple[str, ContainerRequest, dict[str, Any]]] = field(default_factory=list)

    @property
    def requires(self) -> frozenset[str]:
        return frozenset(self.raw.get("requires") or ())

    @property
    def upstream(self) -> dict[str, Any]:
        return dict(self.raw.get("upstream") or {})

    @property
    def setup(self) -> list[str]:
        return list(self.raw.get("setup") or [])

    @property
    def teardown(self) -> list[str]:
        return list(self.raw.get("teardown") or [])

    @property
    def pings(self) -> list[dict[str, Any]]:
        return list(self.raw.get("pings") or [])

    @property
    def refusals(self) -> list[dict[str, Any]]:
        return list(self.raw.get("refusals") or [])

    @property
    def errata(self) -> list[dict[str, Any]]:
        return list(self.raw.get("errata") or [])

    def errata_for(self, behaviour: str) -> list[str]:
        """The errata whose intended reading this behaviour's test encodes (their `behaviours` globs)."""
        return [
            str(e["id"])
            for e in self.errata
            if any(fnmatch.fnmatchcase(behaviour, str(g)) for g in e.get("behaviours") or ())
        ]


class CommandError(ValueError):
    pass


def _split(command: str) -> list[str]:
    argv = shlex.split(command.replace("\\\n", " "))
    if not argv or argv[0] != "docker":
        raise CommandError(f"not a docker command: {command!r}")
    return argv[1:]


def _take(argv: list[str], i: int) -> tuple[str, str, int]:
    """Split `--flag=value` / `--flag value` / `-ovalue` at argv[i]: (flag, value, next index)."""
    arg = argv[i]
    if arg.startswith("--") and "=" in arg:
        flag, value = arg.split("=", 1)
        return flag, value, i + 1
    if i + 1 >= len(argv):
        raise CommandError(f"{arg} needs a value")
    return arg, argv[i + 1], i + 2


def parse_network_create(command: str) -> NetworkRequest:
    argv = _split(command)
    if argv[:2] != ["network", "create"]:
        raise CommandError(f"not a network create: {command!r}")
    args = argv[2:]
    subnets: list[str] = []
    gateways: list[str] = []
    options: list[tuple[str, str]] = []
    internal = ipv6 = False
    name = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--internal",):
            internal, i = True, i + 1
        elif arg == "--ipv6":
            ipv6, i = True, i + 1
        elif arg.split("=", 1)[0] in ("-d", "--driver", "--subnet", "--gateway", "-o", "--opt"):
            flag, value, i = _take(args, i)
            if flag == "--subnet":
                subnets.append(value)
            elif flag == "--gateway":
                gateways.append(value)
            elif flag in ("-o", "--opt"):
                key, _, val = value.partition("=")
                options.append((key, val))
            elif value != "ipvlan":
                raise CommandError(f"driver {value!r} is not ipvlan")
        elif arg.startswith("-"):
            raise CommandError(f"unknown option {arg} in {command!r}")
        else:
            name, i = arg, i + 1
    if name is None:
        raise CommandError(f"no network name in {command!r}")
    return NetworkRequest(name, tuple(subnets), tuple(gateways), tuple(options), internal, ipv6)


def parse_run(command: str, name: str | None = None) -> ContainerRequest:
    argv = _split(command)
    if argv[:1] != ["run"]:
        raise CommandError(f"not a docker run: {command!r}")
    args = argv[1:]
    values: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        key = arg.split("=", 1)[0]
        if key in ("--net", "--network", "--name", "--ip", "--ip6"):
            flag, value, i = _take(args, i)
            values["--net" if flag == "--network" else flag] = value
        elif arg.startswith("-"):
            i += 1  # -it, -itd, --rm: terminal and lifetime flags say nothing about networking
        else:
            break  # the image; the rest is the container's command
    if "--net" not in values:
        raise CommandError(f"no --net in {command!r}")
    return ContainerRequest(
        name=values.get("--name") or name or "",
        network=values["--net"],
        ip=values.get("--ip"),
        ip6=values.get("--ip6"),
    )


def _load(path: Path) -> Example:
    raw = yamlfile.load(path)
    doc = raw.get("doc") or {}
    ex = Example(
        id=raw["example"],
        title=raw.get("title", raw["example"]),
        section=raw.get("section", ""),
        doc=DocRef(doc.get("file", "?"), int(doc.get("line", 0))),
        raw=raw,
    )
    for net in raw.get("networks") or []:
        ex.networks.append((net["command"], parse_network_create(net["command"]), net.get("expect") or {}))
    for c in raw.get("containers") or []:
        req = parse_run(c["command"], c.get("name"))
        ex.containers.append((c["command"], req, c.get("expect") or {}))
    return ex


@cache
def load_examples(directory: Path = FIXTURES) -> dict[str, Example]:
    examples = [_load(p) for p in sorted(directory.glob("*.yaml"))]
    return {e.id: e for e in examples}
