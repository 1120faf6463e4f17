"""The docker backend's network create request: the CLI's pairing of --gateway, --ip-range and --aux-address
with the --subnet holding each, sent to the API as `docker network create` would send it."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.backends import docker
from conformance.backends.base import BackendRefused
from conformance.examples import parse_network_create


def _sent(monkeypatch: pytest.MonkeyPatch, command: str) -> dict[str, Any]:
    sent: list[Any] = []
    monkeypatch.setattr(docker.DAEMON, "api", lambda url, body=None, **_: sent.append(body))
    backend = docker.DockerBackend.__new__(docker.DockerBackend)  # no daemon: only the request is looked at
    backend.driver, backend.ipam_driver, backend.networks = "ipvlan", "default", []
    backend.create_network(parse_network_create(command))
    return dict(sent[0]["IPAM"])


def test_ranges_and_aux_addresses_go_with_their_subnet(monkeypatch: pytest.MonkeyPatch) -> None:
    ipam = _sent(
        monkeypatch,
        "docker network create -d ipvlan --subnet=10.1.0.0/24 --subnet=10.2.0.0/24 --ip-range=10.2.0.128/25 "
        "--aux-address=sw=10.1.0.9 --gateway=10.2.0.1 -o parent=eth0 n",
    )
    assert ipam["Config"] == [
        {"Subnet": "10.1.0.0/24", "AuxiliaryAddresses": {"sw": "10.1.0.9"}},
        {"Subnet": "10.2.0.0/24", "Gateway": "10.2.0.1", "IPRange": "10.2.0.128/25"},
    ]


def test_a_range_outside_every_subnet_is_the_clis_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BackendRefused, match=r"no matching subnet for range 10\.9\.0\.0/25"):
        _sent(monkeypatch, "docker network create -d ipvlan --subnet=10.1.0.0/24 --ip-range=10.9.0.0/25 n")
