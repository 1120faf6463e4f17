"""The backend contract (conformance/backends/base.py): every hook has a typed default, and each backend
declares its own command-line options, which the suite collects."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.backends import BUILTIN, declared_options, resolve
from conformance.backends.base import ALL_CAPABILITIES, BaseBackend, HostContext, network_refs
from conformance.backends.docker import DockerBackend
from conformance.backends.plugin import PluginBackend

HOST = HostContext("n", Path("/nonexistent"), "p-")


def test_every_builtin_backend_keeps_the_contract() -> None:
    for name in BUILTIN:
        cls = resolve(name)
        assert issubclass(cls, BaseBackend) and cls.name == name, name


def test_hooks_have_defaults() -> None:
    class Bare(BaseBackend):
        name = "bare"

    assert Bare.supported({}) == ALL_CAPABILITIES
    assert Bare.describe({}) == {}
    assert Bare.shared_host_netns({}) is None
    assert Bare.shutdown() is None
    assert network_refs(Bare(HOST), "db_net") == ("db_net",)
    with pytest.raises(NotImplementedError, match="backend bare cannot run containers"):
        Bare(HOST).run(None)  # type: ignore[arg-type]
    assert Bare(HOST).network_members("db_net") is None
    with pytest.raises(NotImplementedError, match="backend bare cannot restart its driver"):
        Bare(HOST).restart_driver()


def test_a_backend_with_ids_is_named_by_both() -> None:
    class ById(BaseBackend):
        def network_id(self, name: str) -> str | None:
            return "f" * 12

    assert network_refs(ById(HOST), "db_net") == ("db_net", "f" * 12)


def test_options_come_from_the_backends_that_declare_them() -> None:
    dests = {o.dest: o.default for o in declared_options()}
    assert dests == {
        "plugin_command": None,
        "docker_driver": "ipvlan",
        "docker_ipam_driver": None,
        "docker_root": None,
        "netavark_root": None,
    }
    assert {o.flag for o in PluginBackend.OPTIONS} == {"--plugin-command"}
    assert {o.flag for o in DockerBackend.OPTIONS} == {"--docker-driver", "--docker-ipam-driver", "--docker-root"}


def test_a_factory_outside_the_contract_is_refused() -> None:
    with pytest.raises(ValueError, match=r"not a subclass of conformance\.backends\.base\.BaseBackend"):
        resolve("conformance.backends.base:run_in_netns")
