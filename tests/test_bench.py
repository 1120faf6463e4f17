"""benchmarks/: the statistics, the report (table, JSON, PNG, README block), the suite cost reader, and the
raw faces end to end on this host with macvlan slaves (tiny counts; nothing here asserts a duration)."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from benchmarks import all as bench_all
from benchmarks import chart, common, faces, scale, setup_cost, suite_cost
from ipvlan_driver import netns as ns
from ipvlan_driver.netlink import Netlink

REPO = Path(__file__).resolve().parents[1]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="cannot run here: needs root (network namespaces)")
pytestmark = pytest.mark.root


def test_percentile_is_nearest_rank() -> None:
    assert common.percentile(list(range(1, 101)), 95) == 95
    assert common.percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert common.percentile([7.0], 95) == 7.0
    assert common.summary([0.001, 0.002, 0.003])["median_ms"] == pytest.approx(2.0)


def _results() -> dict[str, Any]:
    def series(median: float) -> dict[str, float]:
        return {"n": 3, "median_ms": median, "p95_ms": median * 2, "mean_ms": median}

    face = {"setup": series(10), "remove": series(1), "total": series(11), "samples_s": [0.01, 0.01, 0.01]}
    return {
        "skipped": {"dataplane": "iperf3 missing"},
        "meta": {"kernel": "6.1.0-test", "cpus": 2, "virtualization": "qemu", "commit": "abc123", "command": "x"},
        "parts": {
            "setup_cost": {
                "kind": "ipvlan",
                "faces": {
                    "floor": {**face, "ratio_to_floor": 1.0},
                    "driver": {**face, "ratio_to_floor": 1.2, "target": 1.3, "target_met": True},
                    "plugin": {**face, "ratio_to_floor": 1.7, "target": 1.5, "target_met": False},
                },
                "skipped": {"docker": "not measured: no daemon"},
            },
            "scale": {
                "driver-l2": {
                    "count": 4,
                    "samples_s": [0.01, 0.011, 0.012, 0.013],
                    "first_median_ms": 10.5,
                    "last_median_ms": 12.5,
                    "last_vs_first": 1.19,
                    "peak_rss_kb": 40960,
                    "rss_growth_kb": 1024,
                    "teardown_s": 0.5,
                }
            },
        },
    }


def test_the_table_says_which_targets_are_met_and_names_what_was_skipped() -> None:
    table = chart.tables(_results())
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("|")}
    assert "met" in rows["driver"] and "MISSED" not in rows["driver"]
    assert "MISSED" in rows["plugin"] and "1.70" in rows["plugin"]
    assert "not measured: no daemon" in rows["docker"]
    assert "1.19" in rows["driver-l2"] and "40.0" in rows["driver-l2"]
    assert "6.1.0-test" in table and "abc123" in table
    assert "Not measured: dataplane: iperf3 missing." in table


def test_the_readme_has_one_bench_block_and_a_rewrite_replaces_only_it() -> None:
    readme = (REPO / "README.md").read_text()
    assert readme.count(chart.BEGIN) == 1 and readme.count(chart.END) == 1
    new = chart.rewrite_readme(readme, "| a | b |\n", "ci/bench --only setup_cost")
    before, _, rest = readme.partition(chart.BEGIN)
    _, _, after = rest.partition(chart.END)
    assert new.startswith(before) and new.endswith(after)
    assert "Produced by `ci/bench --only setup_cost`:\n\n| a | b |\n" + chart.END in new
    assert chart.rewrite_readme(new, "| c |\n", "again").count("| a | b |") == 0  # a second run replaces, not adds


def test_a_readme_without_the_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="bench:begin"):
        chart.rewrite_readme("# no block here\n", "| a |\n", "ci/bench")


def test_write_gives_json_markdown_png_and_the_readme_table(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="cannot run here: the bench extra (matplotlib) is not installed")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{chart.BEGIN}\nold\n{chart.END}\ntail\n")
    chart.write(_results(), tmp_path / "out", readme)
    data = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert data["schema"] == chart.SCHEMA and set(data) >= {"meta", "parts"}
    assert data["parts"]["setup_cost"]["faces"]["driver"]["setup"]["median_ms"] == 10
    png = (tmp_path / "out" / "bench.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    assert "| driver |" in (tmp_path / "out" / "bench.md").read_text()
    text = readme.read_text()
    assert "old" not in text and "| driver |" in text and text.startswith("intro\n") and text.endswith("tail\n")


def test_suite_cost_reads_a_columns_phases_and_slowest_examples(tmp_path: Path) -> None:
    rows = [
        {"example": "ipvlan20", "seconds": {"setup": 2.0, "call": 0.5, "teardown": 0.1}},
        {"example": "ipvlan20", "seconds": {"setup": 0.0, "call": 0.4, "teardown": 0.0}},
        {"example": "db_net", "seconds": {"setup": 1.0, "call": 0.1, "teardown": 0.0}},
    ]
    meta = {"backend": "native", "kernel": "6.1", "phases": {"setup_s": 3.0, "call_s": 1.0, "wall_s": 5.0}}
    (tmp_path / "native").mkdir()
    (tmp_path / "native" / "conformance.json").write_text(json.dumps({"meta": meta, "results": rows}))
    (tmp_path / "old").mkdir()  # a column from before phases were recorded is left out
    (tmp_path / "old" / "conformance.json").write_text(json.dumps({"meta": {"backend": "old"}, "results": []}))
    columns = suite_cost.finished_columns(tmp_path)
    assert list(columns) == ["native"]
    assert columns["native"]["per_example_s"] == {"db_net": 1.1, "ipvlan20": 3.0}
    assert columns["native"]["slowest"][0] == {"example": "ipvlan20", "seconds": 3.0}


# on this host: raw faces with macvlan slaves ---------------------------------------------------


def container_state(netns: str) -> dict[str, Any]:
    """What a container's namespace holds, addresses masked: the faces must leave the same thing."""
    with Netlink(netns) as nl:
        links = sorted((link.name, link.up) for link in nl.links())
        addresses = sorted(
            (nl.link_by_index(a.index).name, a.interface.network.prefixlen)  # type: ignore[union-attr]
            for a in nl.addresses()
            if a.interface.version == 4
        )
        routes = sorted(r.normalized() for r in nl.routes(4))
    return {"links": links, "addresses": addresses, "routes": routes}


def _macvlan_instead_of_ipvlan(monkeypatch: pytest.MonkeyPatch) -> None:
    """This host's kernel has no ipvlan: the driver makes macvlan slaves instead, all else unchanged."""

    def add_macvlan(self: Netlink, name: str, parent: str, mode: str, flag: str) -> Any:
        index = self.require(parent).index
        self._ipr.link("add", ifname=name, kind="macvlan", link=index, macvlan_mode="bridge")
        return self.require(name).index

    monkeypatch.setattr(Netlink, "add_ipvlan", add_macvlan)


@needs_root
def test_the_floor_does_the_drivers_kernel_work_and_no_less(monkeypatch: pytest.MonkeyPatch) -> None:
    """floor, `ip` and the in-process driver each leave eth0 up with one address and the same default route."""
    if not common.kernel_can("macvlan"):
        pytest.skip("cannot run here: no macvlan")
    _macvlan_instead_of_ipvlan(monkeypatch)
    seen = {}
    with common.Lab() as lab:
        for i, face_type in enumerate((faces.Floor, faces.IpCommands, faces.InProcess)):
            face = face_type(lab, "macvlan")
            try:
                handle = face.setup(i)
                seen[face.name] = container_state(handle.netns)
                assert handle.address and ns.exists(handle.netns)
                face.remove(handle)
                assert not ns.exists(handle.netns)
            finally:
                face.close()
    assert seen["floor"] == seen["driver"] == seen["ip"], seen
    assert seen["floor"]["routes"] == ["10.77.0.0/16", f"default via {common.HOST_ADDR.ip}"]
    assert ("eth0", True) in seen["floor"]["links"] and ("lo", True) in seen["floor"]["links"]
    assert not [n for n in ns.list_names() if n.startswith(common.PREFIX)]


@needs_root
def test_a_host_run_end_to_end_writes_every_figure(tmp_path: Path) -> None:
    if not common.kernel_can("macvlan"):
        pytest.skip("cannot run here: no macvlan")
    readme = tmp_path / "README.md"
    readme.write_text(f"{chart.BEGIN}\n{chart.END}\n")
    iperf = "1" if shutil.which("iperf3") else "0"
    argv = ["--kind", "macvlan", "--only", "setup_cost,concurrency,scale,dataplane,suite_cost", "--setup-count", "3"]
    argv += ["--slow-count", "2", "--iperf-seconds", iperf, "--pings", "3", "--reports", str(tmp_path)]
    argv += ["--readme", str(readme), "--as-command", "ci/bench --setup-count 3"]
    pytest.importorskip("matplotlib", reason="cannot run here: the bench extra (matplotlib) is not installed")
    assert bench_all.main(argv) == 0
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["meta"]["kind"] == "macvlan" and data["meta"]["kernel"] == os.uname().release
    assert data["meta"]["hostname"] == socket.gethostname()
    setup = data["parts"]["setup_cost"]["faces"]
    assert setup["floor"]["setup"]["n"] == 3 and setup["ip"]["setup"]["n"] == 2
    assert setup["floor"]["ratio_to_floor"] == 1.0 and setup["ip"]["ratio_to_floor"] > 0
    assert "ipvlan" in data["parts"]["setup_cost"]["skipped"]["driver"]
    variants = data["parts"]["dataplane"]["variants"]
    assert set(variants) == {"macvlan-bridge", "veth-bridge"}
    assert all(v["rtt_container"]["avg_ms"] > 0 and v["rtt_upstream"]["avg_ms"] > 0 for v in variants.values())
    if iperf == "1":
        assert all(v["gbps_container"] > 0 and v["gbps_upstream"] > 0 for v in variants.values())
    assert data["skipped"] == {"concurrency": bench_all.SKIP_NO_IPVLAN, "scale": bench_all.SKIP_NO_IPVLAN}
    assert "| floor | 3 |" in readme.read_text() and "Produced by `ci/bench --setup-count 3`" in readme.read_text()
    assert data["meta"]["command"] == "ci/bench --setup-count 3"
    assert not [n for n in ns.list_names() if n.startswith(common.PREFIX)]


def test_scale_grows_the_faces_side_by_side() -> None:
    calls: list[tuple[str, object]] = []

    class Fake:
        def __init__(self, name: str) -> None:
            self.name = name

        def setup(self, i: int) -> int:
            calls.append((self.name, i))
            return i

        def remove(self, handle: int) -> None:
            calls.append((self.name, f"rm{handle}"))

        def rss(self) -> dict[str, int]:
            return {"rss_kb": 1, "peak_kb": 1}

    grown = scale.grow({"a": Fake("a"), "b": Fake("b")}, 3)
    # container i on every face before container i+1 on any: a slow spell of the host falls on all alike
    assert calls[:6] == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    assert calls[6:] == [("a", "rm0"), ("a", "rm1"), ("a", "rm2"), ("b", "rm0"), ("b", "rm1"), ("b", "rm2")]
    assert set(grown) == {"a", "b"} and all(len(g["samples_s"]) == 3 for g in grown.values())


@needs_root
def test_faces_measured_together_take_turns_container_by_container() -> None:
    calls: list[tuple[str, str]] = []

    class Fake:
        def __init__(self, name: str, lab: common.Lab) -> None:
            self.name, self.lab = name, lab

        def setup(self, i: int) -> int:
            calls.append((self.name, f"up{i}"))
            return i

        def remove(self, handle: int) -> None:
            calls.append((self.name, f"rm{handle}"))

        def close(self) -> None:
            calls.append((self.name, "close"))

    found = setup_cost.together({"a": lambda lab: Fake("a", lab), "b": lambda lab: Fake("b", lab)}, 2, {})
    assert calls[:4] == [("a", "up0"), ("a", "rm0"), ("b", "up0"), ("b", "rm0")]
    assert calls[-2:] == [("b", "close"), ("a", "close")]
    assert found["a"]["setup"]["n"] == found["b"]["setup"]["n"] == 2  # the warm-up is not counted
    assert not [n for n in ns.list_names() if n.startswith(common.PREFIX)]


def test_a_face_that_fails_in_the_rotation_leaves_it_and_the_others_go_on() -> None:
    class Fake:
        def __init__(self, fail_at: int | None) -> None:
            self.fail_at, self.ups = fail_at, 0

        def setup(self, i: int) -> int:
            if i == self.fail_at:
                raise RuntimeError("the kernel said no")
            self.ups += 1
            return i

        def remove(self, handle: int) -> None:
            pass

    good, bad = Fake(None), Fake(1)
    skipped: dict[str, str] = {}
    found = setup_cost.measure_together({"good": good, "bad": bad}, 4, skipped)
    assert skipped == {"bad": "failed: RuntimeError: the kernel said no"}
    assert set(found) == {"good"} and found["good"]["setup"]["n"] == 4
    assert (good.ups, bad.ups) == (4 + setup_cost.WARMUP, 1)


@needs_root
def test_scale_keeps_every_container_and_samples_the_resident_set(monkeypatch: pytest.MonkeyPatch) -> None:
    if not common.kernel_can("macvlan"):
        pytest.skip("cannot run here: no macvlan")
    _macvlan_instead_of_ipvlan(monkeypatch)
    kept = []
    with common.Lab() as lab:
        face = faces.InProcess(lab, "macvlan")
        real_setup = face.setup

        def setup(i: int) -> faces.Handle:
            handle = real_setup(i)
            kept.append(len([n for n in ns.list_names() if n.startswith(lab.prefix + "c")]))
            return handle

        monkeypatch.setattr(face, "setup", setup)
        try:
            grown = scale.grow({"driver": face}, 6)["driver"]
        finally:
            face.close()
    assert kept == [1, 2, 3, 4, 5, 6]  # grown, not set up and removed in turn
    assert len(grown["samples_s"]) == 6 and grown["count"] == 6
    assert [r["containers"] for r in grown["rss"]] == [1, 2, 3, 4, 5, 6]
    assert all(r["peak_kb"] >= r["rss_kb"] > 0 for r in grown["rss"])
    assert grown["last_vs_first"] == pytest.approx(grown["last_median_ms"] / grown["first_median_ms"])
    assert not [n for n in ns.list_names() if n.startswith(common.PREFIX)]


class _Broken:
    name = "broken"

    @staticmethod
    def available(kind: str) -> str:
        return ""

    def __init__(self, lab: common.Lab, kind: str, mode: str = "l2") -> None:
        pass

    def setup(self, i: int) -> faces.Handle:
        raise RuntimeError("the kernel said no")

    def remove(self, handle: faces.Handle) -> None:
        pass

    def close(self) -> None:
        pass


@needs_root
def test_a_face_that_fails_is_reported_and_the_others_still_run(monkeypatch: pytest.MonkeyPatch) -> None:
    if not common.kernel_can("macvlan"):
        pytest.skip("cannot run here: no macvlan")
    monkeypatch.setitem(faces.FACES, "broken", _Broken)
    result = setup_cost.run("macvlan", 1, 1, ["broken", "floor"])
    assert result["skipped"]["broken"] == "failed: RuntimeError: the kernel said no"
    assert result["faces"]["floor"]["setup"]["n"] == 1
    assert not [n for n in ns.list_names() if n.startswith(common.PREFIX)]


def test_the_chart_is_drawn_from_a_runs_json_alone(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="cannot run here: the bench extra (matplotlib) is not installed")
    chart.write(_results(), tmp_path, None, png=False)
    assert not (tmp_path / "bench.png").exists()
    assert chart.main([str(tmp_path / "bench.json")]) == 0
    assert (tmp_path / "bench.png").read_bytes().startswith(b"\x89PNG")
    assert chart.main([str(tmp_path / "missing.json")]) == 2


def test_a_profile_names_the_functions_that_cost_most_and_the_table_shows_them() -> None:
    import cProfile
    import pstats

    from benchmarks import profiling

    def busy() -> int:
        return sum(len(json.dumps(list(range(200)))) for _ in range(300))

    prof = cProfile.Profile()
    prof.runcall(busy)
    summary = profiling._summary(pstats.Stats(prof))
    assert summary["by_cumulative"][0]["function"].endswith("(busy)")
    assert any("dumps" in r["function"] for r in summary["by_cumulative"])
    assert summary["c_calls_s"] > 0 and summary["python_s"] > 0
    row = {"count": 5, "mode": "l2", "floor_ms": 80.0, "driver_profiled_ms": 150.0, "plugin_profiled_ms": 170.0}
    results = _results()
    results["parts"]["profile"] = {**row, "driver": summary, "plugin": summary}
    table = chart.tables(results)
    assert "**Profile** (5 containers, l2" in table and "floor 80.00 ms" in table
    assert f"| driver | {summary['by_own'][0]['function']} |" in table
    assert f"| plugin | {summary['by_own'][chart.PROFILE_ROWS - 1]['function']} |" in table


def test_record_cost_times_reserve_release_and_the_hosts_file_for_each_size(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import record_cost

    rows = record_cost.measure([3, 1])
    assert [r["containers"] for r in rows] == [1, 3]
    keys = ("reserve_ms", "release_ms", "hosts_append_ms", "hosts_rewrite_ms")
    assert all(r[k] > 0 for r in rows for k in keys)
    assert record_cost.main(["2"]) == 0 and "2 containers: reserve" in capsys.readouterr().out
    assert record_cost.main(["many"]) == 2
