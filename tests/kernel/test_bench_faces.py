"""The benchmark's faces of our driver on ipvlan (tiny counts, few processes: CI pays for each): each leaves
the floor's container, and the concurrency and scale parts produce their figures. No duration is asserted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks import common, concurrency, faces, profiling, scale
from ipvlan_driver import netns as ns
from tests.test_bench import container_state

pytestmark = [pytest.mark.kernel, pytest.mark.root]


def _states(mode: str, types: tuple[type[Any], ...]) -> dict[str, Any]:
    seen = {}
    with common.Lab() as lab:
        for i, face_type in enumerate(types):
            face = face_type(lab, "ipvlan", mode)
            try:
                handle = face.setup(i)
                seen[face.name] = container_state(handle.netns)
                face.remove(handle)
                assert not ns.exists(handle.netns)
            finally:
                face.close()
    assert not [n for n in ns.list_names() if n.startswith(common.PREFIX)]
    return seen


def test_every_face_leaves_the_floors_container_l2() -> None:
    seen = _states("l2", (faces.Floor, faces.IpCommands, faces.InProcess, faces.Plugin, faces.Cli))
    assert all(state == seen["floor"] for state in seen.values()), seen
    assert f"default via {common.HOST_ADDR.ip}" in seen["floor"]["routes"]


def test_the_l3_faces_leave_the_floors_container() -> None:
    seen = _states("l3", (faces.Floor, faces.IpCommands, faces.InProcess))
    assert all(state == seen["floor"] for state in seen.values()), seen
    assert "default" in seen["floor"]["routes"]


# a socket left to the GC fails the test: the parts must close what each thread opened
@pytest.mark.filterwarnings("error::ResourceWarning", "error::pytest.PytestUnraisableExceptionWarning")
def test_concurrency_and_scale_report_their_figures() -> None:
    burst = concurrency.run(3, 1)
    assert burst["addresses_distinct"] and burst["addresses_match_replies"]
    assert burst["concurrent"]["n"] == 3 and burst["serial"]["n"] == 1
    grown = scale.run(3, ("l3",))
    assert set(grown) == {"floor-l3", "driver-l3", "plugin-l3"}
    assert all(len(s["samples_s"]) == 3 and s["peak_rss_kb"] > 0 for s in grown.values())
    floor = grown["floor-l3"]["last_vs_first"]
    assert all(s["vs_floor"] == pytest.approx(s["last_vs_first"] / floor) for s in grown.values())
    assert not [n for n in ns.list_names() if n.startswith(common.PREFIX)]


def test_the_profile_part_lists_the_driver_and_the_plugins_request_handling(tmp_path: Path) -> None:
    found = profiling.run(2, tmp_path)
    listing = (tmp_path / "bench-profile.txt").read_text()
    assert "driver in-process" in listing and "plugin request handling" in listing
    assert any("driver.py" in r["function"] for r in found["driver"]["by_cumulative"])
    assert any("plugin.py" in r["function"] for r in found["plugin"]["by_cumulative"])
    assert found["plugin"]["requests"] > 2 * 7  # the network's requests and each container's seven
    assert not [n for n in ns.list_names() if n.startswith(common.PREFIX)]
