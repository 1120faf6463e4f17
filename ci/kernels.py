"""The kernels the kernel matrix boots, and how each one is found or fetched.

6.1 is the host's own (Debian 12's linux-image-amd64, what ci/run-in-vm boots by default); 5.10 (Debian 11)
and 6.12 (bookworm-backports) are unpacked from their packages into a private directory with `dpkg -x`:
nothing is installed, so what the host boots and which kernel the default runner picks do not change.
virtme-ng finds an unpacked kernel's modules beside its image (`DIR/lib/modules/RELEASE`). Standard
library only (bootstrap runs before the venv).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import engines
import vm

META = "linux-image-amd64"  # Debian's meta package: it depends on the suite's current image


@dataclass(frozen=True)
class Kernel:
    name: str  # the matrix's name for it: major.minor
    suite: str | None  # the Debian suite it comes from; None: installed on the host

    @property
    def root(self) -> Path:
        return vm.cache_dir() / "kernels" / self.name


KERNELS = {k.name: k for k in (Kernel("5.10", "bullseye"), Kernel("6.1", None), Kernel("6.12", "bookworm-backports"))}


def image_package(show: str, name: str) -> str | None:
    """The image package `apt-cache show linux-image-amd64` names for kernel `name` (major.minor)."""
    for depends in re.findall(r"^Depends:\s*(.+)$", show, re.M):
        for dep in depends.split(","):
            package = dep.split()[0]
            if re.fullmatch(rf"linux-image-{re.escape(name)}\.\S+", package):
                return package
    return None


def image_in(root: Path, name: str) -> vm.KernelImage | None:
    """The newest `vmlinuz-<name>.*` under root/boot with its modules beside it."""
    found = [k for k in vm.installed_kernels(root / "boot", root / "lib" / "modules") if _is(k.release, name)]
    return found[-1] if found else None


def _is(release: str, name: str) -> bool:
    return release.startswith(f"{name}.") or release.startswith(f"{name}-")


def ensure(kernel: Kernel, say: Callable[[str], None]) -> vm.KernelImage:
    """The kernel's image and modules, fetched once; raises RuntimeError naming what is missing."""
    if kernel.suite is None:
        host = image_in(Path("/"), kernel.name)
        if host is None:
            raise RuntimeError(f"kernel {kernel.name}: not installed here (/boot/vmlinuz-{kernel.name}.* with modules)")
        return host
    found = image_in(kernel.root, kernel.name)
    if found is not None and (kernel.root / ".packages").exists():
        say(f"kernel {kernel.name}: {found.path}")
        return found
    options = engines.apt_options(kernel.suite, say)
    show = subprocess.run(["apt-cache", *options, "show", META], capture_output=True, text=True, check=False).stdout
    package = image_package(show, kernel.name)
    if package is None:
        raise RuntimeError(f"kernel {kernel.name}: Debian {kernel.suite}'s {META} names no linux-image-{kernel.name}.*")
    engines.fetch(f"kernel {kernel.name}", kernel.suite, (package,), "", kernel.root, say)
    found = image_in(kernel.root, kernel.name)
    if found is None:
        raise RuntimeError(f"kernel {kernel.name}: {package} holds no boot/vmlinuz-* with lib/modules")
    _depmod(kernel.root, found.release, say)
    return found


def _depmod(root: Path, release: str, say: Callable[[str], None]) -> None:
    """A package's postinst would run depmod; unpacked, modprobe in the guest needs it run here."""
    depmod = shutil.which("depmod") or next((p for p in ("/sbin/depmod", "/usr/sbin/depmod") if Path(p).exists()), None)
    if depmod is None:
        say(f"kernel {release}: no depmod here; virtme-ng will try when it boots it")
        return
    subprocess.run([depmod, "-a", "-b", str(root), release], capture_output=True, check=False)


def resolve(names: Sequence[str], say: Callable[[str], None]) -> list[tuple[str, vm.KernelImage]]:
    """(matrix name, image) for each name: a KERNELS key, or a path to an unpacked kernel's vmlinuz-RELEASE."""
    out = []
    for name in names:
        if name in KERNELS:
            out.append((name, ensure(KERNELS[name], say)))
            continue
        path = Path(name)
        if not (path.is_file() and path.name.startswith("vmlinuz-")):
            raise RuntimeError(f"{name}: not one of {', '.join(KERNELS)} nor a vmlinuz-RELEASE file")
        release = path.name.removeprefix("vmlinuz-")
        out.append((release, vm.KernelImage(path, release)))
    return out
