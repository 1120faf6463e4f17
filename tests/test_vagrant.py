"""vagrant/: the two-box Vagrantfile validates, and its scripts parse (nothing here boots a box)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

VAGRANT_DIR = Path(__file__).resolve().parents[1] / "vagrant"
needs_vagrant = pytest.mark.skipif(
    shutil.which("vagrant") is None, reason="vagrant is not installed (ci/bootstrap.py installs it where apt can)"
)


def _validate(directory: Path, home: Path) -> subprocess.CompletedProcess[str]:
    # no provider is installed here: --ignore-provider validates everything but the provider blocks
    env = {**os.environ, "VAGRANT_HOME": str(home), "VAGRANT_CWD": str(directory), "VAGRANT_CHECKPOINT_DISABLE": "1"}
    return subprocess.run(
        ["vagrant", "validate", "--ignore-provider"], env=env, capture_output=True, text=True, timeout=120
    )


@needs_vagrant
def test_vagrantfile_validates(tmp_path: Path) -> None:
    done = _validate(VAGRANT_DIR, tmp_path / "home")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "dh1" in done.stdout and "dh2" in done.stdout and "validated successfully" in done.stdout


@needs_vagrant
def test_a_broken_vagrantfile_is_caught(tmp_path: Path) -> None:
    """The check can fail: a misspelt setting is refused by the same command."""
    broken = tmp_path / "vagrant"
    shutil.copytree(VAGRANT_DIR, broken)
    text = (broken / "Vagrantfile").read_text().replace("node.vm.hostname", "node.vm.hostnme", 1)
    (broken / "Vagrantfile").write_text(text)
    done = _validate(broken, tmp_path / "home")
    assert done.returncode != 0 and "hostnme" in done.stdout + done.stderr


def test_two_boxes_of_different_distributions_share_one_private_segment() -> None:
    text = (VAGRANT_DIR / "Vagrantfile").read_text()
    assert '"debian/bookworm64"' in text and "ubuntu-24.04" in text
    assert text.count('"private_network"') == 1 and 'virtualbox__intnet: "ipvlan-l2"' in text
    assert 'libvirt__network_name: "ipvlan-l2"' in text


@pytest.mark.parametrize("script", ["provision.sh", "fetch-reports"])
def test_scripts_parse_and_are_executable(script: str) -> None:
    path = VAGRANT_DIR / script
    assert os.access(path, os.X_OK)
    done = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_provisioning_runs_commands_the_readme_documents() -> None:
    readme = (VAGRANT_DIR.parent / "README.md").read_text()
    provision = (VAGRANT_DIR / "provision.sh").read_text()
    for command in ("python3 ci/bootstrap.py", "ci/conformance native plugin"):
        assert command in provision
        assert command.removeprefix("python3 ") in readme
