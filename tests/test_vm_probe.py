"""ci/vm.py on the host, no root needed: the native-or-VM decision from given facts, and what the VM runs."""

from __future__ import annotations

import gzip
import lzma
import os
import struct
import subprocess
import threading
from pathlib import Path

import pytest

from tests.civm import load_vm

vm = load_vm()

DEBIAN = vm.KernelImage(Path("/boot/vmlinuz-6.1.0-56-amd64"), "6.1.0-56-amd64")
EVERY_LINK = frozenset(vm.FEATURES)


def facts(
    release: str = "6.1.0-56-amd64",
    root: bool = True,
    features: frozenset[str] = EVERY_LINK,
    vm_kernel: object = DEBIAN,
) -> object:
    return vm.HostFacts(release=release, is_root=root, features=features, vm_kernel=vm_kernel)


# --- the decision -------------------------------------------------------------------------------------


def test_root_and_every_link_kind_runs_natively() -> None:
    assert vm.decide(facts()).mode == "native"


@pytest.mark.parametrize(
    "missing",
    [
        pytest.param({"ipvlan-l2", "ipvlan-l3", "ipvlan-l3s"}, id="no-ipvlan"),
        pytest.param({"ipvlan-l3s"}, id="no-ipvlan-l3s"),
        pytest.param({"vlan"}, id="no-vlan"),
        pytest.param({"dummy"}, id="no-dummy"),
    ],
)
def test_a_missing_link_kind_boots_the_vm(missing: set[str]) -> None:
    decision = vm.decide(facts(release="6.18.44-fc", features=EVERY_LINK - missing))
    assert decision.mode == "vm"
    assert all(kind in decision.reason for kind in missing)


def test_not_root_is_an_error_naming_the_way_out() -> None:
    with pytest.raises(vm.RunnerError, match=r"needs root.*vagrant"):
        vm.decide(facts(root=False))


def test_kernel_4_1_without_a_vm_kernel_is_an_error() -> None:
    with pytest.raises(vm.RunnerError, match=r"older than 4\.2.*no VM kernel.*bootstrap"):
        vm.decide(facts(release="4.1.0-2-amd64", vm_kernel=None))


def test_kernel_4_1_with_a_vm_kernel_boots_the_vm() -> None:
    assert vm.decide(facts(release="4.1.0-2-amd64")).mode == "vm"


def test_a_vm_kernel_older_than_4_2_is_an_error() -> None:
    old = vm.KernelImage(Path("/boot/vmlinuz-3.16.0-4-amd64"), "3.16.0-4-amd64")
    with pytest.raises(vm.RunnerError, match=r"3\.16\.0-4-amd64, is older than 4\.2"):
        vm.decide(facts(features=frozenset(), vm_kernel=old))


def test_native_asked_for_on_a_kernel_without_ipvlan_is_an_error() -> None:
    with pytest.raises(vm.RunnerError, match=r"--native: .*ipvlan-l2"):
        vm.decide(facts(features=frozenset({"dummy", "vlan"})), want="native")


def test_vm_asked_for_boots_even_a_capable_host() -> None:
    assert vm.decide(facts(), want="vm").mode == "vm"


@pytest.mark.parametrize(
    ("release", "key"),
    [("6.1.0-56-amd64", (6, 1, 0, 56)), ("6.18.44-fc-v595", (6, 18, 44, 0)), ("4.1", (4, 1, 0, 0))],
)
def test_release_key(release: str, key: tuple[int, ...]) -> None:
    assert vm.release_key(release) == key


def test_newest_vm_kernel_needs_its_modules(tmp_path: Path) -> None:
    boot, modules = tmp_path / "boot", tmp_path / "modules"
    boot.mkdir()
    for release, has_modules in [("5.10.0-9-amd64", True), ("6.1.0-7-amd64", True), ("6.1.0-56-amd64", True)]:
        (boot / f"vmlinuz-{release}").write_bytes(b"")
        (modules / release).mkdir(parents=True, exist_ok=not has_modules)
    (boot / "vmlinuz-6.9.0-1-amd64").write_bytes(b"")  # no modules: cannot be booted with its drivers
    (boot / "vmlinuz").symlink_to("vmlinuz-6.1.0-7-amd64")
    newest = vm.newest_vm_kernel(boot, modules)
    assert newest is not None and newest.release == "6.1.0-56-amd64"
    assert vm.newest_vm_kernel(tmp_path / "nothing", modules) is None


# --- what the VM runs ---------------------------------------------------------------------------------

FAST = vm.Tricks(
    virtiofsd="/usr/lib/qemu/virtiofsd",
    vmlinux=Path("/cache/vmlinux-6.1.0-56-amd64"),
    microvm=True,
    fast_cpu=True,
    tsc_khz=2596158,
)


def plan(tricks: object = FAST) -> object:
    return vm.VmPlan(kernel=DEBIAN, command=("pytest", "-q"), tricks=tricks)


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_optimised_vng_argv_carries_every_trick() -> None:
    argv = vm.vng_argv(plan(), Path("/tmp/run/guest.sh"), vng=Path("/venv/bin/vng"))
    assert argv[:3] == ["/venv/bin/vng", "--run", "/boot/vmlinuz-6.1.0-56-amd64"]
    assert "--disable-kvm" in argv
    assert _option(argv, "--memory") == "1G"
    assert _option(argv, "--rwdir") == str(vm.REPO)
    assert _option(argv, "--qemu") == str(vm.VM_BIN / "qemu-wrapper")
    assert "--qemu-opts=-cpu qemu64,-svm -nodefaults" in argv
    append = _option(argv, "--append").split()
    assert "tsc_early_khz=2596158" in append and "tsc=reliable" in append
    assert any(a.startswith("modprobe.blacklist=psmouse,") for a in append)
    assert argv[-2:] == ["--exec", "sh /tmp/run/guest.sh"]


def test_stock_vng_argv_is_the_plain_recipe() -> None:
    argv = vm.vng_argv(plan(vm.Tricks()), Path("/tmp/run/guest.sh"), vng=Path("vng"))
    assert argv == [
        "vng",
        *("--run", "/boot/vmlinuz-6.1.0-56-amd64", "--disable-kvm", "--memory", "1G"),
        *("--rwdir", str(vm.REPO), "--exec", "sh /tmp/run/guest.sh"),
    ]


def test_vng_env_puts_the_shim_first_only_when_used(tmp_path: Path) -> None:
    env = vm.vng_env(plan(), tmp_path, {"PATH": "/usr/bin"})
    assert env["PATH"].split(":")[:2] == [str(vm.VM_BIN), str(vm.VENV / "bin")]
    assert env["VMRUN_VIRTIOFSD"] == "/usr/lib/qemu/virtiofsd"
    assert env["VMRUN_VMLINUX"] == "/cache/vmlinux-6.1.0-56-amd64"
    assert env["VMRUN_MICROVM"] == "1"
    assert env["VMRUN_PIDDIR"] == str(tmp_path)
    stock = vm.vng_env(plan(vm.Tricks()), tmp_path, {"PATH": "/usr/bin"})
    assert stock["PATH"] == f"{vm.VENV / 'bin'}:/usr/bin"
    assert "VMRUN_VMLINUX" not in stock and "VMRUN_MICROVM" not in stock


def test_reports_outside_the_repository_is_writable_too(tmp_path: Path) -> None:
    repo, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    (repo / "reports").mkdir(parents=True)
    assert vm.writable_dirs(repo) == (repo,)
    (repo / "reports").rmdir()
    elsewhere.mkdir()
    (repo / "reports").symlink_to(elsewhere)
    assert vm.writable_dirs(repo) == (repo, elsewhere)


def test_forwarded_env_keeps_the_suite_and_ci_variables() -> None:
    environ = {
        "IPVLAN_BACKEND": "driver",
        "PYTEST_ADDOPTS": "-x",
        "CI": "true",
        "GITHUB_SHA": "abc",
        "HOME": "/root",
        "VMRUN_PIDDIR": "/tmp/p",
        "OTHER": "1",
    }
    env = vm.forwarded_env(environ, extra=["OTHER", "SET=a b"])
    assert env == {
        "IPVLAN_BACKEND": "driver",
        "PYTEST_ADDOPTS": "-x",
        "CI": "true",
        "GITHUB_SHA": "abc",
        "OTHER": "1",
        "SET": "a b",
    }


def test_guest_script_runs_the_command_after_the_marker(tmp_path: Path) -> None:
    script = vm.guest_script(
        ["sh", "-c", 'printf "%s|%s|%s\\n" "$IPVLAN_X" "$(pwd)" "${PATH%%:*}"; exit 7'],
        {"IPVLAN_X": "it's here"},
        cwd=tmp_path,
    )
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 7
    assert done.stdout.splitlines() == [vm.MARKER, f"it's here|{tmp_path}|{vm.VENV / 'bin'}"]


# --- the bzImage -> vmlinux extraction ----------------------------------------------------------------


def fake_elf(note_type: int = vm.XEN_ELFNOTE_PHYS32_ENTRY) -> bytes:
    """A minimal ELF64 with one PT_NOTE segment holding a Xen note (type 18 is the PVH entry)."""
    name = b"Xen\0"
    note = struct.pack("<III", len(name), 4, note_type) + name + struct.pack("<I", 0x1000000)
    phoff, phentsize = 64, 56
    note_offset = phoff + phentsize
    header = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0x1000000, phoff, 0, 0, 64, phentsize, 1, 64, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", vm.PT_NOTE, 4, note_offset, 0, 0, len(note), len(note), 4)
    return header + phdr + note + bytes(256)


def test_pvh_note_is_recognised() -> None:
    assert vm.has_pvh_note(fake_elf())
    assert not vm.has_pvh_note(fake_elf(note_type=6))
    assert not vm.has_pvh_note(b"MZ" + bytes(100))


def test_finder_skips_a_false_xz_magic_and_extracts_the_elf() -> None:
    elf = fake_elf()
    decoy = vm.XZ_MAGIC + b"not a stream" + bytes(40)
    payload = lzma.compress(elf, format=lzma.FORMAT_XZ)
    blob = b"MZ" + bytes(500) + decoy + payload + b"\0trailer" * 20
    offsets = [offset for offset, kind in vm.find_payloads(blob) if kind == "xz"]
    assert offsets[:2] == [502, 502 + len(decoy)]
    assert vm.extract_vmlinux(blob) == elf


def test_gzip_payloads_are_extracted_too() -> None:
    elf = fake_elf()
    assert vm.extract_vmlinux(b"MZ" + bytes(100) + gzip.compress(elf) + bytes(64)) == elf


def test_a_payload_without_pvh_entry_is_refused() -> None:
    blob = b"MZ" + lzma.compress(fake_elf(note_type=6), format=lzma.FORMAT_XZ)
    assert vm.extract_vmlinux(blob) is None


def test_cached_vmlinux_extracts_once(tmp_path: Path) -> None:
    image = tmp_path / "vmlinuz-6.1.0-56-amd64"
    image.write_bytes(b"MZ" + lzma.compress(fake_elf(), format=lzma.FORMAT_XZ))
    kernel = vm.KernelImage(image, "6.1.0-56-amd64")
    (tmp_path / "vmlinuz-6.1.0-57-amd64").write_bytes(b"another installed kernel")
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in ("vmlinux-6.1.0-56-amd64-1-2", "vmlinux-5.10.0-9-amd64-1-2", "vmlinux-6.1.0-57-amd64-1-2"):
        (cache / name).write_bytes(b"stale")  # an older build, a removed kernel, another kernel's
    first = vm.cached_vmlinux(kernel, cache)
    assert first is not None and first.read_bytes() == fake_elf()
    assert sorted(p.name for p in cache.iterdir()) == sorted([first.name, "vmlinux-6.1.0-57-amd64-1-2"])
    assert vm.cached_vmlinux(kernel, cache) == first


# --- the virtiofsd shim and the --qemu wrapper --------------------------------------------------------

VNG_VIRTIOFSD_ARGS = (
    "--syslog --no-announce-submounts --socket-path /tmp/virtme123 --shared-dir / --sandbox none --cache always"
)


def test_shim_translates_vng_1_42_arguments_for_the_c_daemon() -> None:
    assert vm.translate_virtiofsd_args(VNG_VIRTIOFSD_ARGS.split()) == [
        "--socket-path=/tmp/virtme123",
        *("-o", "source=/", "-o", "cache=always", "-o", "sandbox=chroot"),
    ]


def test_shim_accepts_equals_forms_and_maps_cache_never() -> None:
    args = ["--socket-path=/s", "--shared-dir=/work/main", "--cache=never"]
    assert vm.translate_virtiofsd_args(args)[:5] == ["--socket-path=/s", "-o", "source=/work/main", "-o", "cache=none"]


@pytest.mark.parametrize(
    "args",
    [
        pytest.param([*VNG_VIRTIOFSD_ARGS.split(), "--readonly"], id="readonly"),
        pytest.param(["--socket-path", "/s"], id="no-shared-dir"),
        pytest.param(["--socket-path", "/s", "--shared-dir", "/", "--cache", "bogus"], id="bad-cache"),
        pytest.param(["--socket-path"], id="no-value"),
    ],
)
def test_shim_refuses_what_it_cannot_honour(args: list[str]) -> None:
    with pytest.raises(ValueError):
        vm.translate_virtiofsd_args(args)


def test_shim_help_does_not_offer_readonly() -> None:
    # vng 1.42 passes --readonly whenever `virtiofsd --help` mentions it; the shim would refuse it.
    assert "--readonly" not in vm.SHIM_HELP


VNG_Q35 = [
    *("-name", "virtme-ng", "-m", "1G"),
    *("-chardev", "socket,id=charvirtfs5,path=/tmp/virtme1"),
    *("-device", "vhost-user-fs-pci,chardev=charvirtfs5,tag=ROOTFS"),
    *("-object", "memory-backend-memfd,id=mem,size=1G,share=on", "-numa", "node,memdev=mem"),
    *("-device", "i6300esb,id=watchdog0", "-machine", "q35", "-cpu", "max"),
    *("-device", "virtio-serial-pci", "-device", "virtserialport,name=virtme.stdin,chardev=stdin"),
    *("-kernel", "/boot/vmlinuz-6.1.0-56-amd64", "-append", "quiet -device x"),
]


def test_microvm_rewrite_of_vngs_q35_command_line() -> None:
    out = vm.microvm_args(VNG_Q35)
    assert "-machine" not in out and "q35" not in out
    assert not any(a.startswith("i6300esb") for a in out)
    assert "vhost-user-fs-device,chardev=charvirtfs5,tag=ROOTFS" in out
    assert "virtio-serial-device" in out
    assert "virtserialport,name=virtme.stdin,chardev=stdin" in out
    assert _option(out, "-numa") == "node,memdev=mem"
    assert _option(out, "-append") == "quiet -device x"
    assert out[-4:] == ["-M", vm.MICROVM_MACHINE, "-global", "virtio-mmio.force-legacy=false"]


def test_microvm_rewrite_keeps_a_memory_backend_given_to_machine() -> None:
    out = vm.microvm_args(["-machine", "memory-backend=mem", "-kernel", "k"])
    assert _option(out, "-M") == f"{vm.MICROVM_MACHINE},memory-backend=mem"


def test_kernel_image_is_replaced() -> None:
    out = vm.replace_kernel(VNG_Q35, "/cache/vmlinux")
    assert _option(out, "-kernel") == "/cache/vmlinux"
    assert len(out) == len(VNG_Q35)


# --- plumbing -----------------------------------------------------------------------------------------


class _Sink:
    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)

    def flush(self) -> None:
        pass


def test_pump_swallows_the_marker_and_reports_it() -> None:
    read_fd, write_fd = os.pipe()
    seen: list[str] = []
    sink = _Sink()
    with os.fdopen(read_fd, "rb") as src:
        thread = threading.Thread(target=vm.pump, args=(src, sink, vm.MARKER.encode(), lambda: seen.append("!")))
        thread.start()
        with os.fdopen(write_fd, "wb") as dst:
            # the marker arrives split across two writes, as it may through a pipe
            for piece in (b"boot\n@@ipvlan-conformance: ", b"command starts@@\nout", b"put\n"):
                dst.write(piece)
                dst.flush()
        thread.join(timeout=5)
    assert seen == ["!"]
    assert sink.data == b"boot\noutput\n"


def test_session_members_reads_proc(tmp_path: Path) -> None:
    for pid, state, session in [(10, "S", 10), (11, "S", 10), (12, "Z", 10), (13, "R", 99)]:
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(f"{pid} (qemu (x)) {state} 1 {session} {session} 0 -1\n")
    (tmp_path / "self").mkdir()
    assert vm.session_members(10, tmp_path) == {10, 11}


def test_host_tsc_khz(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\ncpu MHz\t\t: 2596.158\n")
    assert vm.host_tsc_khz(cpuinfo) == 2596158
    cpuinfo.write_text("processor\t: 0\n")
    assert vm.host_tsc_khz(cpuinfo) is None


def test_command_line() -> None:
    args = vm.parse_args(["--vm", "--memory", "2G", "--", ".venv/bin/pytest", "-m", "kernel"])
    assert (args.want, args.memory, args.command) == ("vm", "2G", [".venv/bin/pytest", "-m", "kernel"])
    assert vm.parse_args(["--", "true"]).want == "auto"
    with pytest.raises(SystemExit):
        vm.parse_args(["--memory", "lots", "--", "true"])
    with pytest.raises(SystemExit):
        vm.parse_args(["--native"])
