"""Run a command on a kernel with ipvlan, 802.1q and dummy links: on the host when it has them, else in a VM.

The VM is the newest distro kernel in /boot, booted by virtme-ng under QEMU's software emulation (TCG) with
the host's root read-only and the repository read-write. Standard library only: ci/bootstrap.py imports it
before the venv exists. The numbers behind each speed-up are in shared/notes/vm-recipe.md.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import re
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Literal

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv"
VM_BIN = Path(__file__).resolve().parent / "vm-bin"
MIN_KERNEL = (4, 2)
FEATURES = ("dummy", "vlan", "ipvlan-l2", "ipvlan-l3", "ipvlan-l3s")
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MARKER = "@@ipvlan-conformance: command starts@@"
STATUS_RUNNER = 125  # the runner itself failed (like `docker run`); the command's own status otherwise
STATUS_TIMEOUT = 124  # like coreutils `timeout`
VNG_LOST = 255  # vng's status when QEMU ends without the guest reporting one

# Modules udev would load for emulated hardware the tests never touch (each load costs ~0.1 s under TCG).
MODPROBE_BLACKLIST = (
    "psmouse,pcspkr,floppy,i6300esb,serio_raw,evdev,ata_piix,ata_generic,libata,i2c_piix4,qemu_fw_cfg,button"
)
FAST_QEMU_OPTS = "-cpu qemu64,-svm -nodefaults"
MICROVM_MACHINE = "microvm,accel=tcg,rtc=on,pit=on,pic=on"
FORWARDED_PREFIXES = ("IPVLAN_", "PYTEST_", "CI_", "GITHUB_")
FORWARDED_NAMES = ("CI", "TERM", "LANG", "LC_ALL", "TZ", "NO_COLOR", "FORCE_COLOR", "PY_COLORS", "COLUMNS")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

Mode = Literal["native", "vm"]
Want = Literal["auto", "native", "vm"]


class RunnerError(Exception):
    """The runner cannot do what was asked; the message says why and what to do."""


class Interrupted(Exception):
    """A signal (Ctrl-C, SIGTERM, SIGHUP) asked the runner to stop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- Facts about this machine -------------------------------------------------------------------------


def release_key(release: str) -> tuple[int, ...]:
    """Sortable numbers of a kernel release: '6.1.0-56-amd64' -> (6, 1, 0, 56)."""
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?(?:-(\d+))?", release)
    if m is None:
        return (0, 0)
    return tuple(int(part or 0) for part in m.groups())


def kernel_version(release: str) -> tuple[int, int]:
    major, minor = release_key(release)[:2]
    return (major, minor)


@dataclass(frozen=True)
class KernelImage:
    """A bootable distro kernel (/boot/vmlinuz-RELEASE) whose modules are installed."""

    path: Path
    release: str

    @property
    def version(self) -> tuple[int, int]:
        return kernel_version(self.release)


@dataclass(frozen=True)
class HostFacts:
    """What the decision needs to know about this machine; tests build it by hand."""

    release: str
    is_root: bool
    features: frozenset[str]
    vm_kernel: KernelImage | None
    probe_note: str = ""

    @property
    def version(self) -> tuple[int, int]:
        return kernel_version(self.release)


def installed_kernels(boot: Path = Path("/boot"), modules: Path = Path("/lib/modules")) -> list[KernelImage]:
    found = []
    for image in boot.glob("vmlinuz-*"):
        release = image.name.removeprefix("vmlinuz-")
        if (modules / release).is_dir() and os.access(image, os.R_OK):
            found.append(KernelImage(image, release))
    return sorted(found, key=lambda k: release_key(k.release))


def newest_vm_kernel(boot: Path = Path("/boot"), modules: Path = Path("/lib/modules")) -> KernelImage | None:
    kernels = installed_kernels(boot, modules)
    return kernels[-1] if kernels else None


# Runs in a network namespace of its own, which dies with the shell: nothing is left on the host.
_PROBE_SCRIPT = """
ip link add pr-d0 type dummy && echo dummy
ip link add link pr-d0 name pr-d0.20 type vlan id 20 && echo vlan
for mode in l2 l3 l3s; do
    ip link add link pr-d0 name pr-$mode type ipvlan mode $mode && echo ipvlan-$mode
done
"""
CLONE_NEWNET = 0x40000000


def _enter_new_netns() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWNET): {os.strerror(err)}")


def probe_features() -> tuple[frozenset[str], str]:
    """Which of FEATURES this kernel can create, tried with `ip` in a throw-away network namespace."""
    if os.geteuid() != 0:
        return frozenset(), "not root: cannot create a network namespace"
    if shutil.which("ip") is None:
        return frozenset(), "no `ip` command (Debian package iproute2)"
    try:
        done = subprocess.run(
            ["sh", "-c", _PROBE_SCRIPT],
            preexec_fn=_enter_new_netns,  # safe: the probe runs before the runner starts any thread
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return frozenset(), f"probe failed: {exc}"
    return frozenset(done.stdout.split()) & frozenset(FEATURES), ""


def gather_facts() -> HostFacts:
    features, note = probe_features()
    return HostFacts(
        release=os.uname().release,
        is_root=os.geteuid() == 0,
        features=features,
        vm_kernel=newest_vm_kernel(),
        probe_note=note,
    )


# --- The decision ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    mode: Mode
    reason: str


def shortfall(facts: HostFacts) -> str:
    """What the host kernel lacks, as words ('' when it has everything)."""
    if facts.version < MIN_KERNEL:
        return f"is older than {MIN_KERNEL[0]}.{MIN_KERNEL[1]} (no ipvlan)"
    missing = [f for f in FEATURES if f not in facts.features]
    if missing:
        note = f" ({facts.probe_note})" if facts.probe_note else ""
        return f"cannot create {', '.join(missing)} links{note}"
    return ""


def decide(facts: HostFacts, want: Want = "auto") -> Decision:
    """Native when the host kernel has every link kind, else a VM; RunnerError when neither can work."""
    if not facts.is_root:
        raise RunnerError(
            "needs root: network namespaces, ipvlan links and the VM's virtiofsd all do; "
            "run as root, or use the Vagrant box (vagrant/README.md)"
        )
    lacks = shortfall(facts)
    host = f"host kernel {facts.release}"
    if want != "vm" and not lacks:
        return Decision("native", f"{host} has {', '.join(FEATURES)}")
    if want == "native":
        raise RunnerError(f"--native: {host} {lacks}")
    reason = "--vm asked for" if want == "vm" else f"{host} {lacks}"
    kernel = facts.vm_kernel
    if kernel is None:
        raise RunnerError(
            f"{reason}, and no VM kernel is installed (/boot/vmlinuz-* with /lib/modules): "
            "run ci/bootstrap.py as root, it installs linux-image-amd64, QEMU and virtme-ng"
        )
    if kernel.version < MIN_KERNEL:
        raise RunnerError(f"{reason}, and the newest VM kernel, {kernel.release}, is older than 4.2")
    return Decision("vm", reason)


# --- Boot image: the uncompressed vmlinux inside a bzImage ---------------------------------------------

XZ_MAGIC = b"\xfd7zXZ\x00"
GZIP_MAGIC = b"\x1f\x8b\x08"
PT_NOTE = 4
XEN_ELFNOTE_PHYS32_ENTRY = 18


def find_payloads(blob: bytes) -> list[tuple[int, str]]:
    """Offsets of what may be the compressed kernel inside a bzImage, in file order."""
    found = []
    for kind, magic in (("xz", XZ_MAGIC), ("gzip", GZIP_MAGIC)):
        start = blob.find(magic)
        while start >= 0:
            found.append((start, kind))
            start = blob.find(magic, start + 1)
    return sorted(found)


def _decompress(blob: bytes, offset: int, kind: str) -> bytes | None:
    import lzma
    import zlib

    try:
        if kind == "xz":
            return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(blob[offset:])
        return zlib.decompressobj(wbits=31).decompress(blob[offset:])
    except (lzma.LZMAError, zlib.error, EOFError):
        return None


def _elf_notes(data: bytes) -> Iterator[tuple[bytes, int]]:
    pos = 0
    while pos + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
        yield data[pos + 12 : pos + 12 + namesz].rstrip(b"\0"), ntype
        pos += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4


def has_pvh_note(elf: bytes) -> bool:
    """QEMU boots an ELF kernel with -kernel only through its Xen PVH entry note."""
    if len(elf) < 64 or elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        return False
    (phoff,) = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        header = phoff + i * phentsize
        if header + 40 > len(elf):
            return False
        p_type, _flags, offset, _vaddr, _paddr, size = struct.unpack_from("<IIQQQQ", elf, header)
        if p_type == PT_NOTE and (b"Xen", XEN_ELFNOTE_PHYS32_ENTRY) in _elf_notes(elf[offset : offset + size]):
            return True
    return False


def extract_vmlinux(blob: bytes) -> bytes | None:
    """The PVH-bootable ELF kernel compressed inside a bzImage (xz or gzip), or None."""
    for offset, kind in find_payloads(blob):
        elf = _decompress(blob, offset, kind)
        if elf is not None and has_pvh_note(elf):
            return elf
    return None


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ipvlan-conformance"


def cached_vmlinux(kernel: KernelImage, cache: Path) -> Path | None:
    """Extract once per kernel file (name, size, mtime), keep it in `cache`; None when it cannot be done."""
    stat = kernel.path.stat()
    target = cache / f"vmlinux-{kernel.release}-{stat.st_size}-{stat.st_mtime_ns}"
    if target.is_file():
        return target
    elf = extract_vmlinux(kernel.path.read_bytes())
    if elf is None:
        return None
    cache.mkdir(parents=True, exist_ok=True)
    # ~70 MB each: keep none for a replaced or removed kernel (the kernel matrix's unpacked ones count)
    image_dirs = {kernel.path.parent, Path("/boot"), *cache.glob("kernels/*/boot")}
    for cached in cache.glob("vmlinux-*"):
        release = cached.name.removeprefix("vmlinux-").rsplit("-", 2)[0]
        if release == kernel.release or not any((d / f"vmlinuz-{release}").exists() for d in image_dirs):
            cached.unlink(missing_ok=True)
    partial = cache / f".{target.name}.{os.getpid()}"
    partial.write_bytes(elf)
    os.replace(partial, target)
    return target


# --- The virtiofsd shim: virtme-ng 1.42 speaks the Rust daemon's options, Debian ships QEMU 7.2's C one ---

VIRTIOFSD_CANDIDATES = (
    "/usr/libexec/virtiofsd",
    "/usr/lib/virtiofsd/virtiofsd",
    "/usr/lib/virtiofsd",
    "/usr/lib/qemu/virtiofsd",
)
_CACHE_MODES = {"always": "always", "auto": "auto", "metadata": "auto", "never": "none", "none": "none"}
# vng passes a read-only flag when --help mentions it; the C daemon has no read-only mode, so this does not.
SHIM_HELP = """usage: virtiofsd --socket-path PATH --shared-dir DIR [--cache always|auto|never]
virtme-ng's view of QEMU 7.2's C virtiofsd (ci/vm.py)."""


def translate_virtiofsd_args(argv: Sequence[str]) -> list[str]:
    """The Rust daemon's command line as vng 1.42 writes it -> the same request to the C daemon."""
    values: dict[str, str] = {}
    takes_value = {"--socket-path", "--shared-dir", "--cache", "--sandbox"}
    ignored = {"--syslog", "--no-announce-submounts"}
    args = list(argv)
    while args:
        arg = args.pop(0)
        name, eq, value = arg.partition("=")
        if name in takes_value:
            if not eq:
                if not args:
                    raise ValueError(f"{name} needs a value")
                value = args.pop(0)
            values[name] = value
        elif arg not in ignored:
            # --readonly, --posix-acl, ...: refuse rather than share more than asked; vng then uses 9p.
            raise ValueError(f"unsupported option {arg}")
    for needed in ("--socket-path", "--shared-dir"):
        if needed not in values:
            raise ValueError(f"missing {needed}")
    cache = _CACHE_MODES.get(values.get("--cache", "auto"))
    if cache is None:
        raise ValueError(f"unknown cache mode {values['--cache']}")
    return [
        f"--socket-path={values['--socket-path']}",
        "-o",
        f"source={values['--shared-dir']}",
        "-o",
        f"cache={cache}",
        "-o",
        "sandbox=chroot",
    ]


def _socket_of(args: Sequence[str]) -> Path:
    return Path(next(a for a in args if a.startswith("--socket-path=")).partition("=")[2])


def record_pid(role: str, pid: int) -> None:
    """Leave `pid` where the runner looks for what to kill (VMRUN_PIDDIR)."""
    piddir = os.environ.get("VMRUN_PIDDIR")
    if piddir:
        Path(piddir, f"{role}-{pid}").touch()


def virtiofsd_shim_main(argv: Sequence[str]) -> int:
    if argv[:1] in (["--version"], ["-V"]):
        print("virtiofsd shim (ipvlan-conformance ci/vm.py) over QEMU 7.2's C virtiofsd")
        return 0
    if argv[:1] in (["--help"], ["-h"]):
        print(SHIM_HELP)
        return 0
    try:
        args = translate_virtiofsd_args(argv)
    except ValueError as exc:
        print(f"virtiofsd shim: {exc}", file=sys.stderr)
        return 2
    daemon = os.environ.get("VMRUN_VIRTIOFSD", "/usr/lib/qemu/virtiofsd")
    proc = subprocess.Popen([daemon, *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    record_pid("virtiofsd", proc.pid)
    sock = _socket_of(args)
    deadline = time.monotonic() + 5
    while not sock.is_socket():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            return 1
        time.sleep(0.005)
    # vng waits for the Rust daemon's pid file; it only appears once the socket accepts QEMU.
    Path(f"{sock}.pid").write_text(f"{proc.pid}\n")
    return 0


def is_c_virtiofsd(path: str) -> bool:
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return "FUSE kernel interface" in done.stdout + done.stderr


def c_virtiofsd_for_vng() -> str | None:
    """The C daemon's path when it is the first virtiofsd vng would pick (and fail with), else None."""
    for path in (shutil.which("virtiofsd"), *VIRTIOFSD_CANDIDATES):
        if path and os.access(path, os.X_OK):
            return path if is_c_virtiofsd(path) else None
    return None


# --- The --qemu wrapper: microvm under TCG, and the uncompressed kernel -------------------------------


def _machine_extras(value: str) -> list[str]:
    """Properties of a dropped -machine worth keeping (memory-backend=...), not its type or accel."""
    parts = value.split(",")
    return [p for p in parts if "=" in p and not p.startswith(("accel=", "type="))]


def microvm_args(argv: Sequence[str]) -> list[str]:
    """vng's q35 command line -> QEMU's microvm machine (vng only picks microvm when KVM works)."""
    out: list[str] = []
    extras: list[str] = []
    i = 0
    while i < len(argv):
        opt = argv[i]
        value = argv[i + 1] if i + 1 < len(argv) else None
        if value is not None and opt in ("-machine", "-M"):
            extras += _machine_extras(value)
            i += 2
            continue
        if value is not None and opt == "-device":
            driver, sep, rest = value.partition(",")
            if driver == "i6300esb":  # a PCI watchdog: microvm has no PCI
                i += 2
                continue
            if driver.endswith("-pci"):
                value = driver.removesuffix("-pci") + "-device" + sep + rest
            out += [opt, value]
            i += 2
            continue
        out.append(opt)
        i += 1
    machine = ",".join([MICROVM_MACHINE, *extras])
    return [*out, "-M", machine, "-global", "virtio-mmio.force-legacy=false"]


def replace_kernel(argv: Sequence[str], image: str) -> list[str]:
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        if arg == "-kernel":
            out[i + 1] = image
    return out


def qemu_wrapper_main(argv: Sequence[str]) -> int:
    real = os.environ.get("VMRUN_QEMU") or shutil.which("qemu-system-x86_64") or "qemu-system-x86_64"
    args = list(argv)
    if "-kernel" in args:  # a boot, not vng's `--version` probe
        record_pid("qemu", os.getpid())  # exec keeps the pid
        vmlinux = os.environ.get("VMRUN_VMLINUX")
        if vmlinux:
            args = replace_kernel(args, vmlinux)
        if os.environ.get("VMRUN_MICROVM") == "1":
            args = microvm_args(args)
    os.execv(real, [real, *args])
    return 127  # not reached


# --- Building the VM run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tricks:
    """Which measured speed-ups a boot uses; Tricks() is virtme-ng's stock path."""

    virtiofsd: str | None = None  # the C daemon behind the shim
    vmlinux: Path | None = None
    microvm: bool = False
    fast_cpu: bool = False  # -cpu qemu64,-svm -nodefaults and the modprobe blacklist
    tsc_khz: int | None = None
    force_9p: bool = False

    @property
    def wrapped(self) -> bool:
        return self.vmlinux is not None or self.microvm

    def label(self) -> str:
        machine = "microvm" if self.microvm else "q35"
        fs = "virtiofs" if self.virtiofsd and not self.force_9p else "9p"
        return f"{machine}, {fs}"


@dataclass(frozen=True)
class VmPlan:
    kernel: KernelImage
    command: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    memory: str = "1G"
    rwdirs: tuple[Path, ...] = (REPO,)
    tricks: Tricks = Tricks()
    verbose: bool = False


def writable_dirs(repo: Path = REPO) -> tuple[Path, ...]:
    """The repository, and reports/ too when it is a link to somewhere outside it."""
    reports = (repo / "reports").resolve()
    if reports.is_dir() and not reports.is_relative_to(repo.resolve()):
        return (repo, reports)
    return (repo,)


def host_tsc_khz(cpuinfo: Path = Path("/proc/cpuinfo")) -> int | None:
    try:
        m = re.search(r"^cpu MHz\s*:\s*([\d.]+)", cpuinfo.read_text(), re.MULTILINE)
    except OSError:
        return None
    return round(float(m.group(1)) * 1000) if m else None


def choose_tricks(kernel: KernelImage, force_9p: bool = False) -> Tricks:
    """Every speed-up that can be prepared here; one that cannot is left out, never fatal."""
    virtiofsd = None if force_9p else c_virtiofsd_for_vng()
    try:
        vmlinux = cached_vmlinux(kernel, cache_dir())
    except OSError as exc:
        say(f"vm: cannot extract vmlinux from {kernel.path} ({exc}); booting the bzImage")
        vmlinux = None
    khz = host_tsc_khz()
    # Without tsc_early_khz/tsc=reliable about 1 microvm boot in 7 hangs at TSC calibration.
    return Tricks(virtiofsd, vmlinux, microvm=khz is not None, fast_cpu=True, tsc_khz=khz, force_9p=force_9p)


def forwarded_env(environ: Mapping[str, str], extra: Iterable[str] = ()) -> dict[str, str]:
    """The variables the command sees in the VM: IPVLAN_*, PYTEST_*, CI ones, terminal ones, --env ones."""
    wanted = set(FORWARDED_NAMES)
    out: dict[str, str] = {}
    for spec in extra:
        name, eq, value = spec.partition("=")
        if eq:
            out[name] = value
        else:
            wanted.add(name)
    for name, value in environ.items():
        if name in wanted or name.startswith(FORWARDED_PREFIXES):
            out.setdefault(name, value)
    return {k: v for k, v in out.items() if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k)}


def guest_script(command: Sequence[str], env: Mapping[str, str], cwd: Path = REPO) -> str:
    """The shell script the VM runs: environment, a start marker for the host, cwd, then the command."""
    lines = ["# written by ci/vm.py for one VM run"]
    full_env = {**env, "PATH": f"{VENV / 'bin'}:{GUEST_PATH}", "VIRTUAL_ENV": str(VENV)}
    lines += [f"export {name}={shlex.quote(value)}" for name, value in sorted(full_env.items())]
    lines.append(f"printf '%s\\n' {shlex.quote(MARKER)}")
    lines.append(f"cd {shlex.quote(str(cwd))} || exit {STATUS_RUNNER}")
    lines.append(f"exec {shlex.join(command)}")
    return "\n".join(lines) + "\n"


def vng_argv(plan: VmPlan, script: Path, vng: Path = VENV / "bin" / "vng") -> list[str]:
    argv = [str(vng), "--run", str(plan.kernel.path), "--disable-kvm", "--memory", plan.memory]
    for rwdir in plan.rwdirs:
        argv += ["--rwdir", str(rwdir)]
    t = plan.tricks
    append = []
    if t.force_9p:
        argv.append("--force-9p")
    if t.wrapped:
        argv += ["--qemu", str(VM_BIN / "qemu-wrapper")]
    if t.fast_cpu:
        argv.append(f"--qemu-opts={FAST_QEMU_OPTS}")
        append.append(f"modprobe.blacklist={MODPROBE_BLACKLIST}")
    if t.tsc_khz:
        append += [f"tsc_early_khz={t.tsc_khz}", "tsc=reliable"]
    if append:
        argv += ["--append", " ".join(append)]
    if plan.verbose:
        argv.append("--verbose")
    return [*argv, "--exec", f"sh {shlex.quote(str(script))}"]


def vng_env(plan: VmPlan, piddir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    t = plan.tricks
    path = [str(VENV / "bin"), environ.get("PATH", GUEST_PATH)]  # vng runs virtme-run from its venv
    env = {**environ, "VMRUN_PIDDIR": str(piddir)}
    if t.virtiofsd and not t.force_9p:
        path.insert(0, str(VM_BIN))  # our `virtiofsd` first
        env["VMRUN_VIRTIOFSD"] = t.virtiofsd
    if t.vmlinux is not None:
        env["VMRUN_VMLINUX"] = str(t.vmlinux)
    if t.microvm:
        env["VMRUN_MICROVM"] = "1"
    qemu = shutil.which("qemu-system-x86_64")
    if qemu:
        env["VMRUN_QEMU"] = qemu
    env["PATH"] = ":".join(path)
    return env


# --- Running it, and leaving nothing behind -----------------------------------------------------------


def _proc_stat(pid: int, proc: Path = Path("/proc")) -> tuple[str, int] | None:
    """(state, session) of a process, None when it is gone."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], int(fields[3])


def session_members(sid: int, proc: Path = Path("/proc")) -> set[int]:
    """Live processes of session `sid`: the VM's whole tree, since vng starts it in a session of its own."""
    members = set()
    for entry in proc.iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name), proc)
            if stat is not None and stat[1] == sid and stat[0] != "Z":
                members.add(int(entry.name))
    return members


def _alive(pid: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[0] != "Z"


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _recorded_pids(piddir: Path) -> set[int]:
    pids = set()
    for entry in piddir.glob("*-*"):
        role, _, pid = entry.name.rpartition("-")
        if pid.isdigit() and role in _comm(int(pid)):  # still what we started (comm is cut to 15 characters)
            pids.add(int(pid))
    return pids


def _terminate(pids: set[int], proc: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 3
        while pids and time.monotonic() < deadline:
            proc.poll()  # reap vng, or it stays a zombie that looks alive
            time.sleep(0.02)
            pids = {pid for pid in pids if _alive(pid)}
        if not pids:
            return


def stop_vm(proc: subprocess.Popen[bytes], piddir: Path) -> None:
    """By pid, SIGTERM then SIGKILL: vng and QEMU first (QEMU complains at length when its virtiofsd goes
    first), then every virtiofsd and anything else left in vng's session."""
    members = session_members(proc.pid) | _recorded_pids(piddir)
    if proc.poll() is None:
        members.add(proc.pid)
    daemons = {pid for pid in members if _comm(pid) == "virtiofsd"}
    _terminate(members - daemons, proc)
    _terminate(daemons | session_members(proc.pid), proc)
    proc.wait()


def split_at_marker(pending: bytes, marker: bytes) -> tuple[bytes, bytes] | None:
    """(before, after) the marker line once it has arrived in full, else None."""
    line = marker + b"\n"
    at = pending.find(line)
    if at < 0:
        return None
    return pending[:at], pending[at + len(line) :]


def pump(
    src: IO[bytes],
    dst: IO[bytes],
    marker: bytes | None,
    on_marker: Callable[[], None],
    mute: threading.Event | None = None,
) -> None:
    """Copy a pipe as it comes; the first marker line is swallowed and reported instead; nothing once muted."""
    pending = b""
    while chunk := os.read(src.fileno(), 65536):
        if mute is not None and mute.is_set():
            continue
        if marker is not None:
            pending += chunk
            parts = split_at_marker(pending, marker)
            if parts is None:
                continue
            before, chunk = parts
            dst.write(before)
            dst.flush()
            on_marker()
            marker, pending = None, b""
        dst.write(chunk)
        dst.flush()
    if pending:
        dst.write(pending)
        dst.flush()


@dataclass(frozen=True)
class Attempt:
    status: int
    started: bool  # the command got to run: its status is the answer, whatever it is
    detail: str = ""
    retry: bool = False  # the boot failed: another path may do better


def _launch(plan: VmPlan, script: Path, piddir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        vng_argv(plan, script),
        cwd=REPO,
        env=vng_env(plan, piddir, os.environ),
        stdin=None if _fd_ok(0) else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # so Ctrl-C reaches us only, and the session holds every VM process
    )


def _start_pumps(
    proc: subprocess.Popen[bytes], on_marker: Callable[[], None], mute: threading.Event
) -> list[threading.Thread]:
    assert proc.stdout is not None and proc.stderr is not None
    pumps = [
        threading.Thread(target=pump, args=(proc.stdout, sys.stdout.buffer, MARKER.encode(), on_marker, mute)),
        threading.Thread(target=pump, args=(proc.stderr, sys.stderr.buffer, None, lambda: None, mute)),
    ]
    for thread in pumps:
        thread.daemon = True
        thread.start()
    return pumps


def _wait(
    proc: subprocess.Popen[bytes], started: threading.Event, boot_deadline: float, run_deadline: float | None
) -> Attempt | None:
    """None once vng exits by itself; an Attempt when a deadline comes first."""
    while True:
        try:
            proc.wait(timeout=0.1)
            return None
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if run_deadline is not None and now > run_deadline:
            return Attempt(STATUS_TIMEOUT, started.is_set(), "--timeout reached")
        if not started.is_set() and now > boot_deadline:
            return Attempt(STATUS_TIMEOUT, False, "the command did not start in time", retry=True)


def _outcome(status: int, started: bool) -> Attempt:
    if not started:
        return Attempt(status, False, f"vng exited with status {status} before the command started", retry=True)
    if status == VNG_LOST:
        return Attempt(status, True, "the VM ended without the command's status (kernel panic, QEMU killed?)")
    return Attempt(status, True)


def boot(plan: VmPlan, t0: float, boot_timeout: float, run_deadline: float | None) -> Attempt:
    """One VM run, from writing its script to removing every process it started."""
    started = threading.Event()
    stopping = threading.Event()  # once we stop the VM ourselves, its dying words are noise

    def on_marker() -> None:
        started.set()
        say(f"vm: command started after {time.monotonic() - t0:.1f} s")

    with tempfile.TemporaryDirectory(prefix="ipvlan-vm-") as tmp:
        script, piddir = Path(tmp, "guest.sh"), Path(tmp, "pids")
        script.write_text(guest_script(plan.command, dict(plan.env)))
        piddir.mkdir()
        say(f"vm: booting {plan.kernel.release} ({plan.tricks.label()}) ...")
        proc = _launch(plan, script, piddir)
        pumps = _start_pumps(proc, on_marker, stopping)
        try:
            ended_early = _wait(proc, started, time.monotonic() + boot_timeout, run_deadline)
        finally:
            # A second Ctrl-C must not cut the clean-up short: it is delivered once this is done.
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            if proc.poll() is None:
                stopping.set()
            try:
                stop_vm(proc, piddir)
                for thread in pumps:
                    thread.join(timeout=2)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return ended_early or _outcome(proc.returncode, started.is_set())


def _fd_ok(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def run_in_vm(plan: VmPlan, stock_only: bool, timeout: float | None) -> int:
    """The optimised boot, then virtme-ng's stock one if the first never got the command started."""
    t0 = time.monotonic()
    run_deadline = None if timeout is None else t0 + timeout
    plans = [replace(plan, tricks=Tricks(force_9p=plan.tricks.force_9p))]
    if not stock_only:
        plans.insert(0, plan)
    for attempt_plan in plans:
        # Here a stock boot takes ~20 s, an optimised one ~5 s; both slow down when the CPUs are shared.
        boot_timeout = 300.0 if attempt_plan.tricks == Tricks(force_9p=plan.tricks.force_9p) else 60.0
        attempt = boot(attempt_plan, t0, boot_timeout, run_deadline)
        if not attempt.retry or attempt_plan is plans[-1]:
            break
        say(f"vm: {attempt.detail}; retrying with virtme-ng's stock path")
    if attempt.detail:
        say(f"vm: {attempt.detail}")
    say(f"vm: took {time.monotonic() - t0:.1f} s, exit status {attempt.status}")
    return attempt.status


def run_native(command: Sequence[str]) -> int:
    env = {**os.environ, "PATH": f"{VENV / 'bin'}:{os.environ.get('PATH', GUEST_PATH)}"}
    os.chdir(REPO)
    try:
        os.execvpe(command[0], list(command), env)
    except OSError as exc:
        raise RunnerError(f"cannot run {command[0]}: {exc.strerror}") from exc
    return 127  # not reached


def check_vm_tools() -> None:
    if not (VENV / "bin" / "vng").exists():
        raise RunnerError(f"virtme-ng is not installed in {VENV}: run ci/bootstrap.py")
    if shutil.which("qemu-system-x86_64") is None:
        raise RunnerError("qemu-system-x86_64 not found: run ci/bootstrap.py as root (Debian qemu-system-x86)")


# --- Command line -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ci/run-in-vm",
        description="Run COMMAND where the kernel has ipvlan, 802.1q and dummy links: natively when the host "
        "kernel has them, else in a throw-away VM (the repository is writable there, cwd is the repository).",
        epilog=f"The command's exit status is returned; {STATUS_RUNNER} when the runner itself failed, "
        f"{STATUS_TIMEOUT} on --timeout.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--native", dest="want", action="store_const", const="native", help="never boot a VM")
    where.add_argument("--vm", dest="want", action="store_const", const="vm", help="always boot a VM")
    parser.add_argument("--memory", default="1G", help="guest RAM (default 1G)")
    parser.add_argument("--kernel", type=Path, help="boot this /boot/vmlinuz-RELEASE (default: the newest)")
    parser.add_argument("--stock", action="store_true", help="virtme-ng's stock boot, no speed-ups")
    parser.add_argument("--9p", dest="force_9p", action="store_true", help="share files over 9p, not virtiofs")
    parser.add_argument("--timeout", type=float, help="stop the VM after this many seconds")
    parser.add_argument("--env", action="append", default=[], help="forward NAME or set NAME=VALUE in the VM")
    parser.add_argument("--verbose", "-v", action="store_true", help="show the guest's boot console")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...]")
    args = parser.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        parser.error("no command: ci/run-in-vm [options] -- COMMAND [ARG...]")
    if not re.fullmatch(r"\d+[KMGT]?", args.memory):
        parser.error(f"--memory {args.memory}: expected a size like 1G or 512M")
    args.want = args.want or "auto"
    return args


def _kernel_from(path: Path | None, default: KernelImage | None) -> KernelImage | None:
    if path is None:
        return default
    if not path.is_file() or not path.name.startswith("vmlinuz-"):
        raise RunnerError(f"--kernel {path}: expected an existing /boot/vmlinuz-RELEASE")
    return KernelImage(path, path.name.removeprefix("vmlinuz-"))


def _on_signal(signum: int, _frame: object) -> None:
    raise Interrupted(signum)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    for sig in STOP_SIGNALS:
        signal.signal(sig, _on_signal)
    tty = _save_tty()
    try:
        facts = gather_facts()
        facts = replace(facts, vm_kernel=_kernel_from(args.kernel, facts.vm_kernel))
        decision = decide(facts, args.want)
        if decision.mode == "native":
            say(f"run-in-vm: native: {decision.reason}")
            return run_native(args.command)
        say(f"vm: {decision.reason}")
        check_vm_tools()
        assert facts.vm_kernel is not None
        tricks = Tricks(force_9p=args.force_9p) if args.stock else choose_tricks(facts.vm_kernel, args.force_9p)
        plan = VmPlan(
            kernel=facts.vm_kernel,
            command=tuple(args.command),
            env=tuple(sorted(forwarded_env(os.environ, args.env).items())),
            memory=args.memory,
            rwdirs=writable_dirs(),
            tricks=tricks,
            verbose=args.verbose,
        )
        return run_in_vm(plan, stock_only=args.stock, timeout=args.timeout)
    except RunnerError as exc:
        say(f"run-in-vm: error: {exc}")
        return STATUS_RUNNER
    except Interrupted as exc:
        say(f"run-in-vm: stopped by {exc}")
        return 128 + exc.signum
    finally:
        _restore_tty(tty)


def _save_tty() -> list[Any] | None:
    import termios

    try:
        return termios.tcgetattr(0) if os.isatty(0) else None
    except termios.error:
        return None


def _restore_tty(saved: list[Any] | None) -> None:
    """QEMU puts a terminal on stdin into raw mode; a killed QEMU cannot put it back."""
    import termios

    if saved is not None:
        with contextlib.suppress(termios.error):
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
