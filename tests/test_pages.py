"""Every HTML page the project writes, opened in headless Chromium as a reader would: conformance.html,
matrix.html and the allure report, generated here from canned results. Each loads without a console
error, and the screenshots show what the page is for (the matrix's pass and FAIL cells in their colours)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import matrix, report
from tests.browser import Chromium, find_chromium, pixels
from tests.civm import load_allure_html

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (ci/bootstrap.py installs Debian's `chromium`)"
)
PASS, FAIL = (0xC8, 0xF7, 0xC5), (0xF7, 0xC5, 0xC5)  # report.COLORS' pass and fail cells
RESULTS = {
    ("db_net", "c1-addresses"): ("pass", "pass"),
    ("db_net", "c1-routes-v4"): ("pass", "fail"),
    ("ipvlan20", "frames-tagged-on-trunk"): ("pass", "pass"),
    ("l3s", "c1-addresses"): ("pass", "unsupported"),
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    assert CHROMIUM is not None
    chromium = Chromium(CHROMIUM)
    try:
        yield chromium
    finally:
        chromium.close()


def _column(directory: Path, backend: str, which: int) -> Path:
    rows = [
        {
            "example": e,
            "behaviour": b,
            "outcome": outcomes[which],
            "detail": "AssertionError: no default route" if outcomes[which] == "fail" else "",
            "nodeid": f"conformance/test_x.py::t[{e}-{b}]",
            "errata": [],
            "doc": f"{e}.md:1",
        }
        for (e, b), outcomes in RESULTS.items()
    ]
    meta = {"backend": backend, "kernel": "6.1.0-test", "python": "3.11", "driver": {"driver": backend}}
    report.emit(directory, {"meta": meta, "results": rows, "errata": []}, "2026-12-01T17:00:00Z")
    return directory


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reports")
    runs = [_column(out / "native", "native", 0), _column(out / "docker-26.1", "docker-26.1", 1)]
    assert matrix.main([*map(str, runs), "--out", str(out)]) == 0
    return out


def _colour_count(png: bytes, colour: tuple[int, int, int]) -> int:
    return pixels(png)[colour]


def test_conformance_page_shows_its_cells(browser: Chromium, pages: Path) -> None:
    view = browser.open((pages / "docker-26.1" / "conformance.html").as_uri())
    assert view.errors == []
    assert "AssertionError: no default route" in view.text and "1 fail" in view.text
    counts = pixels(view.png)
    assert counts[PASS] > 1000 and counts[FAIL] > 300, f"pass/fail cells not on the screenshot: {counts.most_common(8)}"


def test_matrix_page_shows_pass_and_fail_cells(browser: Chromium, pages: Path) -> None:
    view = browser.open((pages / "matrix.html").as_uri())
    assert view.errors == []
    assert "ipvlan implementation report" in view.text and "FAIL" in view.text
    counts = pixels(view.png)
    assert counts[PASS] > 1000 and counts[FAIL] > 300, f"pass/fail cells not on the screenshot: {counts.most_common(8)}"


def test_a_broken_page_is_caught(browser: Chromium, tmp_path: Path) -> None:
    """The check itself: a script error and a missing resource both count as console errors."""
    page = tmp_path / "broken.html"
    page.write_text("<html><body><p>x</p><img src='missing.png'><script>nosuch();</script></body></html>")
    view = browser.open(page.as_uri())
    assert any("nosuch" in e for e in view.errors) and any("missing.png" in e for e in view.errors), view.errors
    assert _colour_count(view.png, PASS) == 0


def test_allure_report_renders(browser: Chromium, tmp_path: Path) -> None:
    allure_html = load_allure_html()
    if not allure_html.BINARY.exists():
        pytest.skip(f"allure {allure_html.VERSION} is not installed (ci/bootstrap.py installs it)")
    results = tmp_path / "allure-results"
    results.mkdir()
    for i, ((example, behaviour), outcomes) in enumerate(RESULTS.items()):
        status = {"pass": "passed", "fail": "failed", "unsupported": "skipped"}[outcomes[1]]
        uuid = f"{i:08d}-0000-4000-8000-000000000000"
        result = {
            "uuid": uuid,
            "historyId": f"h{i}",
            "name": f"test[{example}-{behaviour}]",
            "fullName": f"conformance.test_x#test[{example}-{behaviour}]",
            "status": status,
            "stage": "finished",
            "start": 1764608400000 + i * 1000,
            "stop": 1764608400500 + i * 1000,
            "labels": [{"name": "feature", "value": "L2 mode"}, {"name": "story", "value": example}],
        }
        (results / f"{uuid}-result.json").write_text(json.dumps(result))
    done = allure_html.render(results, tmp_path / "allure-report")
    assert done.returncode == 0, done.stdout + done.stderr
    page = tmp_path / "allure-report" / "index.html"
    view = browser.open(page.as_uri(), settle="document.body.innerText.includes('test cases')")
    assert view.errors == []
    assert "ipvlan conformance" in view.text and "L2 mode" in view.text
    assert len(pixels(view.png)) > 100, "the allure screenshot is blank"
