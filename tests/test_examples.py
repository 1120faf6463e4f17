"""The fixtures are data the suite trusts: they load, their commands parse, their doc lines are real."""

from __future__ import annotations

import fnmatch
import functools
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.examples import CommandError, load_examples, parse_network_create, parse_run

DOCS = Path(__file__).resolve().parents[2] / "shared" / "docs"
EXAMPLES = load_examples()
REQUIRED = {
    "db_net",
    "db_net_ipv",
    "isolated1",
    "isolated2",
    "isolated3",
    "ipvlan20",
    "ipvlan30",
    "ipvlan114",
    "netops-vlan10",
    "netops-vlan20",
    "netops-vlan30",
    "ipnet210",
    "ipnet110",
    "v6ipvlan139",
    "ipvlan140",
    "ipvlan40",
    "ipvlan40-foo",
    "l3s",
    "flag-private",
    "flag-vepa",
}


def test_every_documented_example_has_a_fixture() -> None:
    assert set(EXAMPLES) >= REQUIRED, f"missing: {sorted(REQUIRED - set(EXAMPLES))}"


def test_parse_network_create_docker_spellings() -> None:
    req = parse_network_create(
        "docker network  create  -d ipvlan --subnet=192.168.114.0/24 --subnet 192.168.116.0/24 "
        "--gateway=192.168.114.254 --gateway 192.168.116.254 -o parent=eth0.114 --opt ipvlan_mode=l2 "
        "--ipv6 --internal ipvlan114"
    )
    assert req.name == "ipvlan114"
    assert req.subnets == ("192.168.114.0/24", "192.168.116.0/24")
    assert req.gateways == ("192.168.114.254", "192.168.116.254")
    assert req.opts == {"parent": "eth0.114", "ipvlan_mode": "l2"}
    assert req.ipv6 and req.internal


def test_parse_run_takes_network_fields_and_ignores_terminal_flags() -> None:
    req = parse_run("docker run --net=ipnet210 --ip=192.168.214.9 -it --rm alpine ping -c 2 10.1.214.10", "c3")
    assert (req.name, req.network, req.ip, req.ip6) == ("c3", "ipnet210", "192.168.214.9", None)
    named = parse_run("docker  run --net=db_net_ipv --name=ipv1 -itd alpine /bin/sh")
    assert named.name == "ipv1"


@pytest.mark.parametrize("command", ["ip link add foo", "docker run alpine", "docker network create -x a n"])
def test_parse_refuses_what_it_does_not_understand(command: str) -> None:
    with pytest.raises(CommandError):
        if "network" in command:
            parse_network_create(command)
        else:
            parse_run(command)


def _doc_refs() -> list[object]:
    refs = []
    for ex in EXAMPLES.values():
        for err in ex.errata:
            for key in ("doc", "current_doc"):
                if key in err and key == "doc":
                    refs.append(pytest.param(err[key], err.get("says", ""), id=f"{ex.id}-{err['id']}"))
    return refs


@pytest.mark.skipif(not DOCS.is_dir(), reason="needs ../shared/docs next to the repository")
@pytest.mark.parametrize(("ref", "says"), _doc_refs())
def test_erratum_quotes_its_doc_line(ref: dict[str, object], says: str) -> None:
    lines = (DOCS / str(ref["file"])).read_text().splitlines()
    line = lines[int(str(ref["line"])) - 1]
    assert " ".join(says.split()) in " ".join(line.split()), f"{ref}: {line!r} does not contain {says!r}"


@functools.cache
def _collected_ids() -> tuple[str, ...]:
    """Every test id the suite collects (`<example>-<behaviour>`)."""
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "conformance", "--collect-only", "-q", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    ).stdout
    return tuple(line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "[" in line)


def _collected_behaviours() -> dict[str, set[str]]:
    """Every behaviour the suite collects, per example (from the test ids `<example>-<behaviour>`)."""
    found: dict[str, set[str]] = {}
    for test_id in _collected_ids():
        # the longest example id that prefixes the test id (example ids hold dashes too)
        example = max((e for e in EXAMPLES if test_id.startswith(e + "-")), key=len, default=None)
        if example:
            found.setdefault(example, set()).add(test_id.removeprefix(example + "-"))
    return found


def test_errata_name_behaviours_the_suite_has() -> None:
    """An erratum's `behaviours` globs must each match a collected test, so the report's marks cannot rot."""
    behaviours = _collected_behaviours()
    stale = [
        f"{ex.id}/{err['id']}: {pattern}"
        for ex in EXAMPLES.values()
        for err in ex.errata
        for pattern in err.get("behaviours") or ()
        if not any(fnmatch.fnmatchcase(b, pattern) for b in behaviours.get(ex.id, ()))
    ]
    assert not stale, f"errata behaviours matching no test: {stale}"
    marked = {(ex.id, b) for ex in EXAMPLES.values() for b in behaviours.get(ex.id, ()) if ex.errata_for(b)}
    assert ("ipnet210", "c1-routes-v4") in marked and ("db_net", "c1-addresses") not in marked


def test_engine_causes_name_behaviours_the_suite_has() -> None:
    """Each cause of an engine's deviation explains tests that exist, so the report's groups cannot rot."""
    from conformance import causes

    ids = _collected_ids()
    stale = [
        f"{cause.id}: {pattern}"
        for cause in causes.load()
        for pattern in cause.behaviours
        if not any(fnmatch.fnmatchcase(i, pattern) for i in ids)
    ]
    assert not stale, f"causes matching no test: {stale}"


def test_representative_selection_touches_every_mode_a_vlan_ipv6_and_a_refusal() -> None:
    """`-m representative` (third-party columns in CI) must still cover what issue 12 asks of it."""
    reps = [e for e in EXAMPLES.values() if e.raw.get("representative")]
    requests = [step.request for e in reps for step in e.networks]
    assert {"l2", "l3", "l3s"} <= {req.opts.get("ipvlan_mode", "l2") for req in requests}
    assert any("." in req.opts.get("parent", "") for req in requests), "a VLAN parent"
    assert any(":" in subnet for req in requests for subnet in req.subnets), "IPv6"
    collect = [sys.executable, "-m", "pytest", "conformance", "--collect-only", "-q", "-p", "no:cacheprovider"]
    out = subprocess.run(
        [*collect, "-m", "representative"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    ).stdout
    assert "[resilience-refused-run-leaves-nothing]" in out, "a refusal"
    assert "[resilience-l2-concurrent-runs]" not in out, "the costly tier stays out"
