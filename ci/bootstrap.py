#!/usr/bin/env python3
"""Install what the suite needs here, and only what is missing: the VM's Debian packages when the host kernel
cannot make ipvlan, 802.1q or dummy links, and the venv. Idempotent; standard library only (no venv yet)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import allure_html
import engines
import vm

PYPROJECT = vm.REPO / "pyproject.toml"
STAMP = vm.VENV / ".bootstrap-pyproject.sha256"
EXTRAS = "[test,dev,vm]"
APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}


class BootstrapError(Exception):
    """A step failed; the message names it."""


def step(message: str) -> None:
    print(f"bootstrap: {message}", flush=True)


def run(argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
    step(f"$ {' '.join(argv)}")
    status = subprocess.run(list(argv), env=env, check=False).returncode
    if status != 0:
        raise BootstrapError(f"`{' '.join(argv)}` failed with status {status}")


def read_os_release(path: Path = Path("/etc/os-release")) -> dict[str, str]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    pairs = (line.partition("=") for line in lines if "=" in line)
    return {key: value.strip().strip('"') for key, _, value in pairs}


def vm_packages(os_release: Mapping[str, str]) -> tuple[str, ...]:
    """Debian's names; Ubuntu's distro kernel is linux-image-generic."""
    ids = {os_release.get("ID", ""), *os_release.get("ID_LIKE", "").split()}
    kernel = "linux-image-generic" if "ubuntu" in ids else "linux-image-amd64"
    return ("qemu-system-x86", kernel, "busybox-static", "iputils-ping", "iproute2")


def missing_packages(packages: Sequence[str]) -> list[str]:
    if shutil.which("dpkg-query") is None:
        return list(packages)
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package} ${db:Status-Abbrev}\n", *packages],
        capture_output=True,
        text=True,
        check=False,
    )
    installed = {fields[0] for fields in map(str.split, done.stdout.splitlines()) if fields[1:2] == ["ii"]}
    return [p for p in packages if p not in installed]


class Apt:
    """apt-get, with `apt-get update` run at most once per bootstrap."""

    def __init__(self) -> None:
        self.updated = False

    def usable(self) -> str:
        """'' when apt-get can install here, else why not."""
        if shutil.which("apt-get") is None:
            return "no apt-get (not Debian or Ubuntu)"
        if os.geteuid() != 0:
            return "not root"
        return ""

    def install(self, packages: Sequence[str]) -> None:
        if not self.updated:
            run(["apt-get", "update"], env=APT_ENV)
            self.updated = True
        run(["apt-get", "install", "-y", "--no-install-recommends", *packages], env=APT_ENV)


def ensure_packages(apt: Apt, packages: Sequence[str], why: str) -> None:
    missing = missing_packages(packages)
    if not missing:
        step(f"{why}: {', '.join(packages)} already installed")
        return
    blocked = apt.usable()
    if blocked:
        raise BootstrapError(f"{why}: cannot install {' '.join(missing)} ({blocked}); install them by hand")
    step(f"{why}: installing {', '.join(missing)}")
    apt.install(missing)


def ensure_vm_packages(apt: Apt) -> None:
    if shutil.which("ip") is None:
        # The probe itself needs `ip`: without it every host would look like it needs the VM.
        ensure_packages(apt, ["iproute2"], "the kernel probe needs `ip`")
    facts = vm.gather_facts()
    lacks = vm.shortfall(facts)
    if not lacks:
        step(f"host kernel {facts.release} makes every link kind: no VM needed, no VM packages")
        return
    step(f"host kernel {facts.release} {lacks}: tests needing them run in a VM")
    ensure_packages(apt, vm_packages(read_os_release()), "VM packages")
    kernel = vm.newest_vm_kernel()
    if kernel is None:
        raise BootstrapError("no /boot/vmlinuz-* with modules in /lib/modules after installing the kernel package")
    prepare_vmlinux(kernel)


def prepare_vmlinux(kernel: vm.KernelImage) -> None:
    """Extract the uncompressed kernel now, so the first VM boot does not pay for it (~1 s)."""
    try:
        vmlinux = vm.cached_vmlinux(kernel, vm.cache_dir())
    except OSError as exc:
        step(f"VM kernel {kernel.release}: cannot cache its vmlinux ({exc}); the VM boots the bzImage")
        return
    step(f"VM kernel {kernel.release}: vmlinux {vmlinux or 'not extractable; the VM boots the bzImage'}")


def pyproject_digest() -> str:
    return hashlib.sha256(PYPROJECT.read_bytes()).hexdigest()


def ensure_venv(apt: Apt) -> None:
    python = vm.VENV / "bin" / "python"
    if not python.exists():  # missing, or its interpreter is gone
        if subprocess.run([sys.executable, "-c", "import ensurepip"], check=False).returncode != 0:
            ensure_packages(apt, ["python3-venv"], "creating the venv needs ensurepip")
        run([sys.executable, "-m", "venv", "--clear", str(vm.VENV)])
    digest = pyproject_digest()
    if STAMP.exists() and STAMP.read_text().strip() == digest:
        step(f"venv {vm.VENV}: up to date with pyproject.toml")
        return
    step(f"venv {vm.VENV}: pyproject.toml changed since the last install")
    run([str(python), "-m", "pip", "install", "--quiet", "-e", f"{vm.REPO}{EXTRAS}"])
    STAMP.write_text(digest + "\n")


# third-party drivers the suite can validate (conformance/backends/docker.py, cni.py), installed on demand
BACKEND_PACKAGES = {
    "docker": ("docker.io", "containerd", "runc", "busybox-static"),
    "cni": ("containernetworking-plugins",),
}


def ensure_backend_packages(apt: Apt, columns: Sequence[str]) -> None:
    """Each column's packages: the host's own (docker, cni), or an engine fetched into a private directory."""
    for name in columns:
        col = engines.column(name)
        if col.engine is None:
            packages = BACKEND_PACKAGES.get(col.backend, ())
        else:
            # the image is built from the host's busybox whichever engine runs it
            extra = ("busybox-static",) if col.backend == "docker" else ()
            packages = (*col.engine.host_packages, *extra)
        if packages:
            ensure_packages(apt, packages, name)
        if col.engine is not None:
            try:
                engines.ensure(col.engine, step)
            except RuntimeError as exc:
                raise BootstrapError(str(exc)) from None


# what the project's own tests use beyond Python: `vagrant validate` checks vagrant/Vagrantfile; headless
# chromium opens every HTML page the project writes (tests/test_pages.py)
TEST_TOOLS = ("vagrant", "chromium")


def ensure_test_tools(apt: Apt) -> None:
    """Installed where apt can; elsewhere the tests that need them skip and say why (never fatal)."""
    missing = missing_packages(TEST_TOOLS)
    if missing and apt.usable():
        step(f"test tools: {', '.join(missing)} not installed ({apt.usable()}): their tests will skip")
        return
    ensure_packages(apt, TEST_TOOLS, "test tools")


def main(argv: Sequence[str] = ()) -> int:
    started = time.monotonic()
    backends = [b for arg in argv for b in arg.removeprefix("--backends=").split(",") if b]
    apt = Apt()
    try:
        ensure_vm_packages(apt)
        ensure_backend_packages(apt, backends)
        ensure_test_tools(apt)
        allure_html.ensure(step)  # the main job renders allure-results to HTML; never fatal
        ensure_venv(apt)
    except BootstrapError as exc:
        step(f"error: {exc}")
        return 1
    step(f"done in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
