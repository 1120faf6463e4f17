"""ci/kernels.py: which kernels the kernel matrix boots and where they come from (no download here)."""

from __future__ import annotations

import lzma
import subprocess
import sys
from pathlib import Path

import pytest

from tests.civm import load_kernels, load_vm
from tests.test_vm_probe import fake_elf

kernels = load_kernels()
vm = load_vm()
REPO = Path(__file__).resolve().parents[1]

BULLSEYE_SHOW = """Package: linux-image-amd64
Version: 5.10.223-1
Depends: linux-image-5.10.0-32-amd64 (= 5.10.223-1)

Package: linux-image-amd64
Version: 6.1.192-3
Status: install ok installed
Depends: linux-image-6.1.0-57-amd64 (= 6.1.192-3)
"""


def test_the_three_kernels_of_the_issue() -> None:
    assert {k: v.suite for k, v in kernels.KERNELS.items()} == {
        "5.10": "bullseye",
        "6.1": None,  # the host's own: Debian 12's linux-image-amd64
        "6.12": "bookworm-backports",
    }


def test_the_meta_package_names_the_image_of_the_wanted_kernel() -> None:
    assert kernels.image_package(BULLSEYE_SHOW, "5.10") == "linux-image-5.10.0-32-amd64"
    assert kernels.image_package(BULLSEYE_SHOW, "6.1") == "linux-image-6.1.0-57-amd64"
    assert kernels.image_package(BULLSEYE_SHOW, "6.12") is None
    assert kernels.image_package("Depends: linux-image-6.12.95+deb12-amd64 (= 6.12.95-1~bpo12+1)", "6.12") == (
        "linux-image-6.12.95+deb12-amd64"
    )


def _unpacked(root: Path, release: str, modules: bool = True) -> Path:
    (root / "boot").mkdir(parents=True, exist_ok=True)
    image = root / "boot" / f"vmlinuz-{release}"
    image.write_bytes(b"MZ")
    if modules:
        (root / "lib" / "modules" / release).mkdir(parents=True)
    return image


def test_an_unpacked_kernel_is_found_with_its_modules_only(tmp_path: Path) -> None:
    _unpacked(tmp_path, "6.12.95+deb12-amd64")
    _unpacked(tmp_path, "6.12.90+deb12-amd64", modules=False)  # no modules: not bootable with ipvlan
    found = kernels.image_in(tmp_path, "6.12")
    assert found is not None and found.release == "6.12.95+deb12-amd64"
    assert kernels.image_in(tmp_path, "6.1") is None  # 6.1 is not a prefix of 6.12's release


def test_unpacked_kernels_are_never_the_default_runners(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """They live in the cache, not /boot: what the host boots and ci/run-in-vm's default stay as they were,
    even when the unpacked kernel is newer than the installed one."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    newer = kernels.Kernel("6.12", "bookworm-backports")
    assert newer.root.is_relative_to(tmp_path / "cache")
    _unpacked(newer.root, "6.12.95+deb12-amd64")
    boot = tmp_path / "root"
    _unpacked(boot, "6.1.0-57-amd64")
    default = vm.newest_vm_kernel(boot / "boot", boot / "lib" / "modules")
    assert default is not None and default.release == "6.1.0-57-amd64"
    assert kernels.image_in(newer.root, "6.12") is not None  # the unpacked one is there, just not the default


def test_a_path_names_an_extra_kernel_and_nonsense_is_refused(tmp_path: Path) -> None:
    image = _unpacked(tmp_path, "6.6.0-custom")
    [(name, found)] = kernels.resolve([str(image)], print)
    assert (name, found.release, found.path) == ("6.6.0-custom", "6.6.0-custom", image)
    with pytest.raises(RuntimeError, match=r"not one of 5\.10, 6\.1, 6\.12 nor a vmlinuz-RELEASE file"):
        kernels.resolve(["4.4"], print)


def test_kernel_matrix_help_runs_without_a_vm() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "ci" / "kernel-matrix"), "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "one column per" in done.stdout


def test_a_cached_vmlinux_of_another_kernels_directory_is_kept(tmp_path: Path) -> None:
    """Booting the host's kernel must not throw away an unpacked kernel's extracted vmlinux (nor the reverse)."""
    cache = tmp_path / "cache"
    _unpacked(cache / "kernels" / "6.12", "6.12.95+deb12-amd64")
    kept = cache / "vmlinux-6.12.95+deb12-amd64-1-2"
    gone = cache / "vmlinux-4.9.0-removed-1-2"
    for stale in (kept, gone):
        stale.write_bytes(b"elf")
    host = tmp_path / "boot" / "vmlinuz-6.1.0-57-amd64"
    host.parent.mkdir()
    host.write_bytes(b"MZ" + lzma.compress(fake_elf(), format=lzma.FORMAT_XZ))
    assert vm.cached_vmlinux(vm.KernelImage(host, "6.1.0-57-amd64"), cache) is not None
    assert kept.exists() and not gone.exists()
