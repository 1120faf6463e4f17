"""Named network namespaces (the `ip netns` conventions) without forking or shelling out.

A namespace is a bind mount of a thread's `/proc/thread-self/ns/net` under /run/netns, exactly where
`ip netns` looks, so `ip netns exec` and our own code see the same namespaces. Plumbing shared by the
driver and the conformance suite; it imports neither (import-linter holds it to that), and it reads no
links, addresses or routes: those are each side's own.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

NETNS_RUN_DIR = Path("/run/netns")
NETNS_ETC_DIR = Path("/etc/netns")

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_SLAVE = 1 << 19
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")


class NetnsError(Exception):
    """A named namespace could not be made, found, entered or named (the message says which)."""


class NetnsExists(NetnsError):
    """The name is already taken under /run/netns."""


class NetnsMissing(NetnsError):
    """No namespace of that name exists."""


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def mount(source: str, target: str, fstype: str | None, flags: int) -> None:
    _check(
        _libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags, None),
        f"mount {target}",
    )


def netns_path(name: str) -> Path:
    if not name or "/" in name or name in (".", ".."):
        raise NetnsError(f"invalid network namespace name {name!r}")
    return NETNS_RUN_DIR / name


def exists(name: str) -> bool:
    return netns_path(name).exists()


def is_namespace(name: str) -> bool:
    """A name under /run/netns that really is a namespace (a bind mount), not a stray plain file."""
    return os.path.ismount(netns_path(name))


def list_names() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_RUN_DIR))
    except FileNotFoundError:
        return []


def _in_new_thread(work: Callable[[], T]) -> T:
    """Run `work` in a short-lived thread: namespace switches there never leak into the caller."""
    box: dict[str, object] = {}

    def runner() -> None:
        try:
            box["result"] = work()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=runner, name="netns")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]


def _bind_name(name: str, bind: Callable[[Path], None], what: str) -> None:
    """Reserve /run/netns/<name> and bind a namespace onto it; nothing is left behind on failure."""
    path = netns_path(name)
    NETNS_RUN_DIR.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444)
    except FileExistsError:
        raise NetnsExists(f"network namespace {name!r} already exists") from None
    os.close(fd)
    try:
        bind(path)
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise NetnsError(f"failed to {what} {name!r}: {exc.strerror}") from exc


def create(name: str) -> None:
    def new_namespace(path: Path) -> None:
        def work() -> None:
            unshare(CLONE_NEWNET)
            mount("/proc/thread-self/ns/net", str(path), None, MS_BIND)

        _in_new_thread(work)

    _bind_name(name, new_namespace, "create network namespace")


def attach(name: str, pid: int) -> None:
    """Name the network namespace of process `pid` (`ip netns attach`), e.g. a Docker container's."""
    _bind_name(
        name,
        lambda path: mount(f"/proc/{pid}/ns/net", str(path), None, MS_BIND),
        f"name the namespace of process {pid}",
    )


def remove(name: str) -> None:
    """Remove a named namespace; one already gone is success."""
    path = netns_path(name)
    if not path.exists():
        return
    _libc.umount2(str(path).encode(), MNT_DETACH)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    etc = NETNS_ETC_DIR / name
    if etc.is_dir():
        hosts = etc / "hosts"
        if hosts.is_symlink() or hosts.is_file():
            hosts.unlink()  # ours; anything else a user put there stays, and so does the directory then
        with contextlib.suppress(OSError):
            etc.rmdir()


@contextlib.contextmanager
def entered(name: str | None) -> Iterator[None]:
    """Switch the calling thread into namespace `name` for the block (None: stay where we are)."""
    if name is None:
        yield
        return
    try:
        target = os.open(netns_path(name), os.O_RDONLY)
    except FileNotFoundError:
        raise NetnsMissing(f"network namespace {name!r} does not exist") from None
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        setns(target)
        try:
            yield
        finally:
            setns(home)
    finally:
        os.close(target)
        os.close(home)


def run_in(name: str | None, work: Callable[[], T]) -> T:
    """Call `work` with the calling thread inside `name` (sockets it opens stay bound there)."""
    with entered(name):
        return work()


def hosts_file(name: str) -> Path:
    """The per-namespace hosts file `ip netns exec` bind-mounts over /etc/hosts."""
    return NETNS_ETC_DIR / name / "hosts"


def exec_preparer(name: str) -> Callable[[], None]:
    """A `preexec_fn` that puts a forked child into `name` the way `ip netns exec` does."""
    path = str(netns_path(name))
    hosts = hosts_file(name)

    def prepare() -> None:
        fd = os.open(path, os.O_RDONLY)
        setns(fd)
        os.close(fd)
        if hosts.exists():
            # a private mount namespace so the bind of the hosts file is seen by this child only
            unshare(CLONE_NEWNS)
            mount("none", "/", None, MS_REC | MS_SLAVE)
            mount(str(hosts), "/etc/hosts", None, MS_BIND)

    return prepare
