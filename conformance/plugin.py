"""Suite machinery: backend selection, shared deployments, capability gating, leak check, reports."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import netnsutil as ns

from . import kernel, report
from .backends import declared_options, resolve
from .backends.base import BackendFactory
from .cases import Case, deployment_rank
from .deploy import DeployError, Deployment, deployed, lab, worker_prefix
from .examples import Example
from .labnet import Lab
from .observe import KernelError, Observer

KERNEL_MINIMUMS = kernel.load()


class DeploymentCache:
    """Keeps one example deployed while its read-only tests run (they are collected together)."""

    def __init__(self, factory: BackendFactory, options: dict[str, Any]) -> None:
        self.factory = factory
        self.options = options
        self.key: str | None = None
        self.value: Deployment | BaseException | None = None
        self.stack = contextlib.ExitStack()

    def get(self, example: Example) -> Deployment:
        if self.key != example.id:
            self.close()
            self.key = example.id
            try:
                self.value = self.stack.enter_context(deployed(example, self.factory, self.options))
            except BaseException as exc:
                self.value = exc
        if isinstance(self.value, BaseException):
            raise DeployError(f"deploying {example.id} failed: {self.value}")
        assert self.value is not None
        return self.value

    def close(self) -> None:
        self.key, self.value = None, None
        self.stack.close()


def pytest_configure(config: pytest.Config) -> None:
    # markers and the -n tweak are conformance.options'; the phase clock starts with the suite's machinery
    config.stash[report.STARTED] = time.monotonic()
    config.pluginmanager.register(report.PhaseRecorder(config), "ipvlan-conformance-phase-times")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # group each example's tests so its deployment is built once (stable: file order kept within a rank)
    def key(item: pytest.Item) -> tuple[str, int]:
        callspec = getattr(item, "callspec", None)
        case = callspec.params.get("case") if callspec else None
        if not isinstance(case, Case):
            return "", 0
        if case.example.raw.get("representative"):
            item.add_marker(pytest.mark.representative)
        # the resilience tier last: a driver or daemon it overwhelms must not fail the docs' examples
        group = ("~" if case.example.id == "resilience" else "") + case.example.id
        return group, deployment_rank(getattr(item, "fixturenames", ()))

    items.sort(key=key)


def backend_options(config: pytest.Config) -> dict[str, Any]:
    """Every backend's declared options by dest, and where the report goes (a daemon keeps its logs there)."""
    found = {o.dest: config.getoption(o.flag) for o in declared_options()}
    return found | {"report_dir": config.getoption("--report-dir")}


@pytest.fixture(scope="session")
def backend_factory(request: pytest.FixtureRequest) -> BackendFactory:
    try:
        return resolve(request.config.getoption("--backend"))
    except (ValueError, ImportError, AttributeError) as exc:
        raise pytest.UsageError(str(exc)) from exc


@pytest.fixture(scope="session", autouse=True)
def _root_namespace_guard() -> Iterator[None]:
    if os.geteuid() != 0:
        pytest.exit("the conformance suite builds network namespaces: run it as root", returncode=4)
    _kernel_probe()
    before = set(ns.list_names())
    links_before = _root_links()
    yield
    # only this process's own: under xdist other workers' labs come and go meanwhile
    leaked = {n for n in set(ns.list_names()) - before if n.startswith(worker_prefix())}
    for name in leaked:
        ns.remove(name)
    assert not leaked, f"namespaces left behind by the run: {sorted(leaked)}"
    # every topology lives in namespaces of its own: the root namespace must be exactly as it was
    assert _root_links() == links_before, f"the root namespace's links changed: {links_before} -> {_root_links()}"


def _root_links() -> list[str]:
    with Observer(None) as seen:
        return sorted(link.name for link in seen.links())


def _kernel_probe() -> None:
    """Fail the run at once, with the way out, on a kernel that cannot make ipvlan links."""
    too_old = KERNEL_MINIMUMS.refusal(os.uname().release)
    if too_old:
        pytest.exit(f"{too_old}; boot a newer one (ci/kernel-matrix lists those it can fetch)", returncode=4)
    name = f"icprobe{os.getpid()}"
    ns.create(name)
    try:
        with Lab(name) as nl:
            nl.add_veth("p0", "p1")
            nl.add_ipvlan("iv0", "p0", "l2")
    except KernelError as exc:
        pytest.exit(
            f"this kernel ({os.uname().release}) cannot create ipvlan links ({exc}); run the suite "
            "through the VM runner: ci/run-in-vm -- .venv/bin/pytest conformance/",
            returncode=4,
        )
    finally:
        ns.remove(name)


@pytest.fixture(scope="session")
def _deployments(backend_factory: BackendFactory, request: pytest.FixtureRequest) -> Iterator[DeploymentCache]:
    cache = DeploymentCache(backend_factory, backend_options(request.config))
    try:
        yield cache
    finally:
        cache.close()
        # asked before shutdown: a daemon's version is known only while it runs
        described = backend_factory.describe(cache.options)
        request.config.stash[report.DRIVER] = {str(k): str(v) for k, v in described.items()}
        backend_factory.shutdown()  # a backend's long-lived daemon (Docker) goes before the leak check


def _gate(case: Case, factory: BackendFactory, request: pytest.FixtureRequest) -> None:
    request.node.user_properties.extend(
        [
            ("example", case.example.id),
            ("behaviour", case.behaviour),
            ("section", case.example.section),
            ("doc", str(case.example.doc)),
        ]
    )
    report.label_allure(case)
    capabilities = factory.supported(backend_options(request.config))
    missing = sorted(case.example.requires - capabilities)
    if missing:
        pytest.skip(f"unsupported: backend {request.config.getoption('--backend')} lacks {', '.join(missing)}")
    gap = KERNEL_MINIMUMS.gap(os.uname().release, case.example.requires)
    if gap:
        pytest.skip(gap)


@pytest.fixture
def deployment(
    case: Case, _deployments: DeploymentCache, backend_factory: BackendFactory, request: pytest.FixtureRequest
) -> Deployment:
    """The example deployed as the docs do it; shared by the read-only checks of that example."""
    _gate(case, backend_factory, request)
    return _deployments.get(case.example)


@pytest.fixture
def spent_deployment(
    case: Case, _deployments: DeploymentCache, backend_factory: BackendFactory, request: pytest.FixtureRequest
) -> Iterator[Deployment]:
    """The shared deployment, for the one test that takes it apart (`rm` of its containers): sorted after
    the example's read-only tests, and thrown away after it, so no test ever sees it changed. Cheaper
    than a fresh lab: the containers are already running."""
    _gate(case, backend_factory, request)
    try:
        yield _deployments.get(case.example)
    finally:
        _deployments.close()


@pytest.fixture
def fresh_lab(
    case: Case, _deployments: DeploymentCache, backend_factory: BackendFactory, request: pytest.FixtureRequest
) -> Iterator[Deployment]:
    """A topology of its own with nothing deployed, for tests that change things."""
    _gate(case, backend_factory, request)
    _deployments.close()  # one example's lab at a time keeps the VM light
    with lab(case.example, backend_factory, options=_deployments.options) as dep:
        yield dep


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    report.terminal_summary(terminalreporter, config)


def pytest_sessionfinish(session: pytest.Session) -> None:
    directory = session.config.getoption("--report-dir")
    if directory and not hasattr(session.config, "workerinput"):
        report.write(Path(directory), session.config)
