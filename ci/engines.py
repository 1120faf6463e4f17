"""Engines the matrix runs that this machine's Debian release does not ship, and how a column names one.

An engine is fetched from another Debian suite into a private directory (apt with its own lists and
cache, then `dpkg -x`): nothing is installed, the host's packages and what it boots are untouched, and
the VM sees the directory at the same path. Standard library only (bootstrap runs before the venv).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import vm

DEFAULT_MIRROR = "http://deb.debian.org/debian"
_UPDATED: set[str] = set()  # suites whose lists this process has fetched


@dataclass(frozen=True)
class Engine:
    column: str  # how ci/conformance and the report name it
    backend: str  # the suite's --backend
    suite: str  # the Debian suite it comes from
    packages: tuple[str, ...]  # unpacked together; the first one is the engine
    version: str  # the engine package's version must start with this
    host_packages: tuple[str, ...] = ()  # what it uses from the host (containerd, runc...)

    @property
    def root(self) -> Path:
        return vm.cache_dir() / "engines" / self.column


ENGINES = {
    e.column: e
    for e in (
        # Docker 26 runs with Debian 12's containerd 1.6 and runc (measured); the client comes with it
        Engine("docker-26.1", "docker", "trixie", ("docker.io", "docker-cli"), "26.1.", ("containerd", "runc")),
        # netavark 1.14 needs glibc 2.39: Debian 13's libc is unpacked beside it and runs it as its loader
        Engine("netavark", "netavark", "trixie", ("netavark", "libc6", "libgcc-s1"), "1.14."),
    )
}
# the host's own engines, as columns: what Debian 12 ships
SYSTEM_COLUMNS = {"docker-20.10": "docker"}


@dataclass(frozen=True)
class Column:
    name: str  # as given: docker-26.1:ipvlan-conformance
    backend: str
    pytest_args: tuple[str, ...]
    engine: Engine | None = None


def column(name: str) -> Column:
    """`docker`, `docker-20.10`, `docker-26.1[:PLUGIN]`, `netavark`, or any backend name."""
    base, _, driver = name.partition(":")
    extra = (f"--docker-driver={driver}",) if driver else ()
    engine = ENGINES.get(base)
    if engine is not None:
        option = f"--{engine.backend}-root={engine.root}"
        return Column(name, engine.backend, (f"--backend={engine.backend}", option, *extra), engine)
    backend = SYSTEM_COLUMNS.get(base, base)
    return Column(name, backend, (f"--backend={backend}", *extra))


SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))


def mirror(sources: Sequence[Path] = SOURCES) -> str:
    """The Debian mirror the host already uses (these machines reach only it)."""
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        found = re.search(r"^URIs:\s*(\S+)", text, re.M) or re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.M)
        if found and "security" not in found.group(1):
            return found.group(1).rstrip("/")
    return DEFAULT_MIRROR


def _apt_options(state: Path) -> list[str]:
    return [
        f"-o=Dir::Etc::sourcelist={state / 'sources.list'}",
        "-o=Dir::Etc::sourceparts=/dev/null",
        f"-o=Dir::State::Lists={state / 'lists'}",
        f"-o=Dir::Cache={state / 'cache'}",
        "-o=Debug::NoLocking=1",  # private lists and cache: no lock shared with the host's apt
        "-o=APT::Sandbox::User=root",  # _apt cannot write into a private directory under /root
    ]


def ensure(engine: Engine, say: Callable[[str], None]) -> Path:
    """The engine's root, fetched and unpacked once; raises RuntimeError naming what failed."""
    fetch(engine.column, engine.suite, engine.packages, engine.version, engine.root, say)
    return engine.root


def apt_options(suite: str, say: Callable[[str], None]) -> list[str]:
    """apt's options for a private state holding `suite` only; its lists are fetched once per process."""
    state = vm.cache_dir() / "engines" / f"apt-{suite}"
    (state / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (state / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    (state / "sources.list").write_text(f"deb [trusted=yes] {mirror()} {suite} main\n")
    options = _apt_options(state)
    if suite not in _UPDATED:
        for tool in ("apt-get", "dpkg"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"Debian {suite}: needs {tool} (Debian or Ubuntu) to fetch packages")
        _run(["apt-get", *options, "update"], f"apt-get update ({suite})", say)
        _UPDATED.add(suite)
    return options


def fetch(name: str, suite: str, packages: Sequence[str], version: str, root: Path, say: Callable[[str], None]) -> str:
    """Unpack `packages` from Debian `suite` into `root` once (the first must be at `version`...);
    returns the first package's version. A stamp beside the files says what is there."""
    stamp = root / ".packages"
    wanted = " ".join(packages)
    if stamp.exists() and stamp.read_text().split("\n")[0] == wanted:
        found = stamp.read_text().split("\n")[1]
        say(f"{name}: {root} ({found})")
        return found.split()[1]
    options = apt_options(suite, say)
    state = vm.cache_dir() / "engines" / f"apt-{suite}"
    with tempfile.TemporaryDirectory(prefix=f"{name}-", dir=state) as tmp:
        _run(["apt-get", *options, "download", *packages], f"{name}: downloading {wanted}", say, tmp)
        debs = sorted(Path(tmp).glob("*.deb"))
        main = next((d for d in debs if d.name.startswith(f"{packages[0]}_")), None)
        if main is None:
            raise RuntimeError(f"{name}: apt-get download gave no {packages[0]} package")
        got = main.name.split("_")[1].replace("%3a", ":")
        if not got.startswith(version):
            raise RuntimeError(f"{name}: Debian {suite} has {packages[0]} {got}, not {version}x")
        unpacked = Path(tmp) / "root"
        for deb in debs:
            _run(["dpkg", "-x", str(deb), str(unpacked)], f"{name}: unpacking {deb.name}", say)
        shutil.rmtree(root, ignore_errors=True)
        root.parent.mkdir(parents=True, exist_ok=True)
        unpacked.rename(root)
    stamp.write_text(f"{wanted}\n{packages[0]} {got} from Debian {suite}\n")
    say(f"{name}: {root} ({packages[0]} {got} from Debian {suite})")
    return got


def _run(argv: list[str], what: str, say: Callable[[str], None], cwd: str | None = None) -> None:
    say(what)
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-3:]
        raise RuntimeError(f"{what}: `{' '.join(argv[:2])} ...` failed ({done.returncode}): {' / '.join(tail)}")
