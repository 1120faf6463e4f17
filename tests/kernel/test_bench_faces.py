"""The benchmark's faces of our driver on ipvlan (tiny counts): each leaves the floor's container, and the
concurrency and scale parts produce their figures. Nothing asserts a duration."""

from __future__ import annotations

import pytest

from benchmarks import common, concurrency, faces, scale, setup_cost
from ipvlan_driver import netns as ns
from tests.test_bench import container_state

pytestmark = [pytest.mark.kernel, pytest.mark.root]


@pytest.mark.parametrize("mode", ["l2", "l3"])
def test_every_face_leaves_the_floors_container(mode: str) -> None:
    seen = {}
    with common.Lab() as lab:
        types = (faces.Floor, faces.IpCommands, faces.InProcess, faces.Plugin, faces.Cli)
        for i, face_type in enumerate(types):
            face = face_type(lab, "ipvlan", mode)
            try:
                handle = face.setup(i)
                seen[face.name] = container_state(handle.netns)
                face.remove(handle)
                assert not ns.exists(handle.netns)
            finally:
                face.close()
    assert all(state == seen["floor"] for state in seen.values()), seen
    gateway = f"default via {common.HOST_ADDR.ip}" if mode == "l2" else "default"
    assert gateway in seen["floor"]["routes"]
    assert not [n for n in ns.list_names() if n.startswith(common.PREFIX)]


def test_setup_cost_concurrency_and_scale_report_their_figures() -> None:
    cost = setup_cost.run("ipvlan", 2, 1, ["floor", "driver", "plugin"])
    assert {"floor", "driver", "plugin"} <= set(cost["faces"])
    assert cost["faces"]["driver"]["target"] == 1.3 and "target_met" in cost["faces"]["plugin"]
    burst = concurrency.run(4, 2)
    assert burst["addresses_distinct"] and burst["addresses_match_replies"]
    assert burst["concurrent"]["n"] == 4
    grown = scale.run(4, ("l2",))
    assert set(grown) == {"floor-l2", "driver-l2", "plugin-l2"}
    assert all(len(s["samples_s"]) == 4 and s["peak_rss_kb"] > 0 for s in grown.values())
    assert not [n for n in ns.list_names() if n.startswith(common.PREFIX)]
