"""The hosted-CI workflow parses, has the lint, unit and suite jobs, keeps the reports, and runs only
commands README.md documents (so the README stays the one place that says how to run things)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"


def _workflow() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return data


def _documented(readme: str) -> set[str]:
    """Command lines of README.md: its code blocks' lines and its inline `code` spans."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", readme, re.M | re.S)
    lines = {line.split("  #")[0].strip() for block in blocks for line in block.splitlines()}
    return {line for line in lines if line} | set(re.findall(r"`([^`\n]+)`", readme))


def _commands(workflow: dict[str, Any]) -> list[str]:
    return [
        line.strip()
        for job in workflow["jobs"].values()
        for step in job["steps"]
        for line in str(step.get("run", "")).splitlines()
        if line.strip()
    ]


def test_workflow_has_the_jobs() -> None:
    workflow = _workflow()
    assert set(workflow["jobs"]) == {"lint", "unit", "suite"}
    assert workflow["jobs"]["suite"]["needs"] == ["lint", "unit"]
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request"} <= set(triggers)


def test_reports_are_kept_even_when_the_suite_fails() -> None:
    steps = _workflow()["jobs"]["suite"]["steps"]
    upload = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    assert len(upload) == 1 and upload[0]["if"] == "always()" and upload[0]["with"]["path"] == "reports/"


def test_only_checkout_and_upload_come_from_outside() -> None:
    uses = {str(s["uses"]).split("@")[0] for j in _workflow()["jobs"].values() for s in j["steps"] if "uses" in s}
    assert uses == {"actions/checkout", "actions/upload-artifact"}


def test_every_run_step_is_a_command_the_readme_documents() -> None:
    documented = _documented((REPO / "README.md").read_text())
    commands = _commands(_workflow())
    assert commands
    undocumented = [c for c in commands if c.removeprefix("sudo ") not in documented]
    assert not undocumented, f"workflow commands README.md does not document: {undocumented}"


def test_the_readme_check_can_fail() -> None:
    assert "ci/deploy-to-prod" not in _documented((REPO / "README.md").read_text())
