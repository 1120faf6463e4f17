"""What each libnetwork request may hold: field names and types, checked before any verb runs.

A request that breaks the schema is refused with one message naming the method, the field (with its
path, `IPv4Data[0].Gateway`) and the type it should have. Go encodes nil maps and slices as `null`, so
null is "absent" for every optional field. Fields not listed pass through unchecked, as libnetwork
may add new ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class Field:
    kind: type
    required: bool = False
    inner: Mapping[str, Field] | None = None  # the fields of an object, or of each object in a list
    nonempty: bool = False


def _req(kind: type = str) -> Field:
    return Field(kind, required=True, nonempty=kind is str)


NETWORK_ID = {"NetworkID": _req()}
ENDPOINT = {**NETWORK_ID, "EndpointID": _req()}
POOL_DATA = {
    "AddressSpace": Field(str),
    "Pool": _req(),
    "Gateway": Field(str),
    "AuxAddresses": Field(dict),
}
NETWORK_OPTIONS = {
    "com.docker.network.generic": Field(dict),
    "com.docker.network.enable_ipv6": Field(bool),
    "com.docker.network.internal": Field(bool),
}
INTERFACE = {"Address": Field(str), "AddressIPv6": Field(str), "MacAddress": Field(str)}

SCHEMAS: dict[str, Mapping[str, Field]] = {
    "NetworkDriver.CreateNetwork": {
        **NETWORK_ID,
        "Options": Field(dict, inner=NETWORK_OPTIONS),
        "IPv4Data": Field(list, inner=POOL_DATA),
        "IPv6Data": Field(list, inner=POOL_DATA),
    },
    "NetworkDriver.DeleteNetwork": NETWORK_ID,
    "NetworkDriver.CreateEndpoint": {**ENDPOINT, "Interface": Field(dict, inner=INTERFACE), "Options": Field(dict)},
    "NetworkDriver.EndpointOperInfo": ENDPOINT,
    "NetworkDriver.DeleteEndpoint": ENDPOINT,
    "NetworkDriver.Join": {**ENDPOINT, "SandboxKey": Field(str), "Options": Field(dict)},
    "NetworkDriver.Leave": ENDPOINT,
    "NetworkDriver.ProgramExternalConnectivity": {**ENDPOINT, "Options": Field(dict)},
    "NetworkDriver.RevokeExternalConnectivity": ENDPOINT,
    "IpamDriver.RequestPool": {
        "AddressSpace": Field(str),
        "Pool": Field(str),
        "SubPool": Field(str),
        "Options": Field(dict),
        "V6": Field(bool),
    },
    "IpamDriver.ReleasePool": {"PoolID": _req()},
    "IpamDriver.RequestAddress": {"PoolID": _req(), "Address": Field(str), "Options": Field(dict)},
    "IpamDriver.ReleaseAddress": {"PoolID": _req(), "Address": _req()},
}

_NAMES = {str: "a string", bool: "true or false", dict: "an object", list: "a list", int: "an integer"}


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


def _check(where: str, body: Mapping[str, Any], fields: Mapping[str, Field]) -> None:
    for key, spec in fields.items():
        value = body.get(key)
        path = f"{where}{key}"
        if value is None:
            if spec.required:
                raise ConfigError(f"field {path!r} is missing: it must be {_NAMES[spec.kind]}")
            continue
        # bool is an int in Python; JSON true must never pass for a number, nor 1 for true
        if not isinstance(value, spec.kind) or (spec.kind is not bool and isinstance(value, bool)):
            raise ConfigError(f"field {path!r} must be {_NAMES[spec.kind]}, not {_describe(value)}")
        if spec.nonempty and not value:
            raise ConfigError(f"field {path!r} must not be empty")
        if spec.inner is None:
            continue
        if isinstance(value, dict):
            _check(f"{path}.", value, spec.inner)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if not isinstance(item, dict):
                    raise ConfigError(f"field '{path}[{i}]' must be an object, not {_describe(item)}")
                _check(f"{path}[{i}].", item, spec.inner)


def validate(method: str, body: Mapping[str, Any]) -> None:
    """Refuse a request whose fields have the wrong types, naming the first such field."""
    fields = SCHEMAS.get(method)
    if fields is not None:
        _check("", body, fields)
