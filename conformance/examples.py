"""Documented examples as data: load `fixtures/*.yaml` and turn the docs' docker commands into requests."""

from __future__ import annotations

import fnmatch
import shlex
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from . import yamlfile
from .data import FIXTURES


@dataclass(frozen=True)
class NetworkRequest:
    """A `docker network create` as typed: strings as given, nothing validated (the driver under test, or
    the engine in front of it, judges; see conformance/libnetwork.py for what Docker itself refuses)."""

    name: str
    subnets: tuple[str, ...] = ()
    gateways: tuple[str, ...] = ()
    options: tuple[tuple[str, str], ...] = ()  # -o key=value, in order, any key
    internal: bool = False
    ipv6: bool = False
    ip_ranges: tuple[str, ...] = ()
    aux_addresses: tuple[tuple[str, str], ...] = ()  # --aux-address name=ip

    @property
    def opts(self) -> dict[str, str]:
        return dict(self.options)


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


@dataclass(frozen=True)
class ParentExpect:
    """The parent link the docs' network should have (`kind`: vlan, dummy or an existing link)."""

    name: str | None = None
    kind: str | None = None
    link: str | None = None
    vlan_id: int | None = None


@dataclass(frozen=True)
class NetworkExpect:
    """What the docs say about a network; unset fields say nothing."""

    subnets: tuple[str, ...] = ()
    gateways: tuple[str, ...] = ()
    mode: str = "l2"
    flag: str = "bridge"
    internal: bool = False
    parent: ParentExpect = ParentExpect()


@dataclass(frozen=True)
class ContainerExpect:
    """What the docs show inside a container; None: the docs show nothing of it (no test)."""

    addresses: tuple[str, ...] | None = None
    routes: tuple[str, ...] | None = None  # `ip route`, normalized
    routes6: tuple[str, ...] | None = None  # `ip -6 route`

    def routes_for(self, family: int) -> tuple[str, ...] | None:
        return self.routes if family == 4 else self.routes6


@dataclass(frozen=True)
class NetworkStep:
    command: str
    request: NetworkRequest
    expect: NetworkExpect


@dataclass(frozen=True)
class ContainerStep:
    command: str
    request: ContainerRequest
    expect: ContainerExpect


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value or ())


def network_expect(raw: dict[str, Any]) -> NetworkExpect:
    parent = raw.get("parent") or {}
    vlan_id = parent.get("vlan_id")
    return NetworkExpect(
        subnets=_strings(raw.get("subnets")),
        gateways=_strings(raw.get("gateways")),
        mode=str(raw.get("mode", "l2")),
        flag=str(raw.get("flag", "bridge")),
        internal=bool(raw.get("internal", False)),
        parent=ParentExpect(
            name=str(parent["name"]) if parent.get("name") else None,
            kind=str(parent["kind"]) if parent.get("kind") else None,
            link=str(parent["link"]) if parent.get("link") else None,
            vlan_id=int(vlan_id) if vlan_id is not None else None,
        ),
    )


def container_expect(raw: dict[str, Any]) -> ContainerExpect:
    def field_(key: str) -> tuple[str, ...] | None:
        return _strings(raw[key]) if key in raw else None

    return ContainerExpect(field_("addresses"), field_("routes"), field_("routes6"))


@dataclass
class Example:
    id: str
    title: str
    section: str
    doc: DocRef
    raw: dict[str, Any]
    networks: list[NetworkStep] = field(default_factory=list)
    containers: list[ContainerStep] = field(default_factory=list)

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


NETWORK_FLAGS = ("-d", "--driver", "--subnet", "--gateway", "--ip-range", "--aux-address", "-o", "--opt")


def parse_network_create(command: str) -> NetworkRequest:
    """The command's flags as a typed request; no option is judged here (that is the driver's job)."""
    argv = _split(command)
    if argv[:2] != ["network", "create"]:
        raise CommandError(f"not a network create: {command!r}")
    args = argv[2:]
    subnets: list[str] = []
    gateways: list[str] = []
    options: list[tuple[str, str]] = []
    ranges: list[str] = []
    aux: list[tuple[str, str]] = []
    internal = ipv6 = False
    name = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--internal",):
            internal, i = True, i + 1
        elif arg == "--ipv6":
            ipv6, i = True, i + 1
        elif arg.split("=", 1)[0] in NETWORK_FLAGS:
            flag, value, i = _take(args, i)
            if flag == "--subnet":
                subnets.append(value)
            elif flag == "--gateway":
                gateways.append(value)
            elif flag == "--ip-range":
                ranges.append(value)
            elif flag == "--aux-address":
                key, _, val = value.partition("=")
                aux.append((key, val))
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
    return NetworkRequest(
        name, tuple(subnets), tuple(gateways), tuple(options), internal, ipv6, tuple(ranges), tuple(aux)
    )


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
        command = str(net["command"])
        ex.networks.append(NetworkStep(command, parse_network_create(command), network_expect(net.get("expect") or {})))
    for c in raw.get("containers") or []:
        command = str(c["command"])
        req = parse_run(command, c.get("name"))
        ex.containers.append(ContainerStep(command, req, container_expect(c.get("expect") or {})))
    return ex


@cache
def load_examples(directory: Path = FIXTURES) -> dict[str, Example]:
    examples = [_load(p) for p in sorted(directory.glob("*.yaml"))]
    return {e.id: e for e in examples}
