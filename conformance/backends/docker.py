"""`docker`: a real Docker daemon and its ipvlan driver (or a plugin: `--docker-driver=NAME`).

The backend owns the daemon: one `dockerd` for the whole run, started inside a docker-host namespace of
its own (never a user's running daemon), with its own data root, no iptables and no bridge. It builds its
image from Debian's busybox-static (no registry), maps the docs' `eth0` to the topology's uplink, and
observes each container through its namespace (named from the container's PID), so the suite's
address, route and ping checks apply unchanged.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import netnsutil as ns
from ipvlan_driver import failpoints  # our plugin's kill switch, for the one column where Docker runs it

from ..examples import ContainerRequest, NetworkRequest
from ..labnet import Lab
from .base import (
    ALL_CAPABILITIES,
    Attached,
    BackendRefused,
    BaseBackend,
    HostContext,
    Option,
    our_version,
    stop_process,
)
from .unixhttp import request_json

RUN_DIR = Path("/run/ipvlan-conformance-docker")
HOST_NETNS = "icdocker-host"
IMAGE = "ipvlan-conformance/busybox:latest"
APPLETS = ("sh", "ip", "ping", "ping6", "sleep", "cat", "ls", "ifconfig", "route", "hostname", "nslookup")
# how long one call may take: under emulation, 50 containers started at once keep dockerd busy for minutes
# (measured: none of them answered within 300 s in a 2-core TCG VM); a daemon that never answers still fails
CALL_TIMEOUT = 600.0
READY_TIMEOUT = 600.0  # dockerd restarting restores every live container first
# what a Docker release lacks, as data: the report says "unsupported" for these, never "fail"
VERSION_GAPS = {20: frozenset({"l3s", "flag"}), 23: frozenset()}


class DockerUnavailable(RuntimeError):
    pass


def _system_client() -> str:
    # Debian's docker.io client matches its daemon; a newer client elsewhere on PATH would do too
    return "/usr/bin/docker" if Path("/usr/bin/docker").exists() else shutil.which("docker") or "docker"


class Daemon:
    """One dockerd for the run, in its own network namespace; stopped at exit."""

    def __init__(self) -> None:
        self.sock = RUN_DIR / "docker.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: Any = None
        self.plugin: subprocess.Popen[bytes] | None = None
        self.plugin_log: Any = None
        self.version = ""
        self.root: Path | None = None  # an engine unpacked from its packages (--docker-root)
        self.report_dir: str | None = None
        self._dump_lock = threading.Lock()
        self._dumped = 0.0

    def use_root(self, root: str | None) -> None:
        if self.proc is None:
            self.root = Path(root) if root else None

    def client(self) -> str:
        own = self.root / "usr/bin/docker" if self.root else None
        return str(own) if own and own.exists() else _system_client()

    def _dockerd(self) -> str:
        if self.root is None:
            found = shutil.which("dockerd")
            if found is None:
                raise DockerUnavailable("dockerd is not installed (Debian: apt-get install docker.io)")
            return found
        dockerd = self.root / "usr/sbin/dockerd"
        if not dockerd.exists():
            raise DockerUnavailable(f"--docker-root {self.root}: no usr/sbin/dockerd there")
        return str(dockerd)

    def _env(self) -> dict[str, str]:
        """dockerd finds docker-proxy and docker-init beside it; containerd and runc come from the system."""
        path = os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        if self.root is not None:
            path = f"{self.root / 'usr/sbin'}:{self.root / 'usr/bin'}:{path}"
        return {**os.environ, "PATH": path}

    def docker(self, *args: str, check: bool = True, timeout: float = CALL_TIMEOUT) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [self.client(), "-H", f"unix://{self.sock}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise BackendRefused(
                (proc.stderr.strip() or proc.stdout.strip()).removeprefix("Error response from daemon: ")
            )
        return proc

    def api(self, url: str, body: Any = None, method: str = "POST", timeout: float = CALL_TIMEOUT) -> Any:
        """One call to the daemon's API; a refusal is BackendRefused with the daemon's message.

        The engine's own client makes the same calls, without a Go process per call (50 of them at
        once were more than a 2 GiB VM held)."""
        try:
            status, reply = request_json(self.sock, method, url, body, timeout=timeout)
        except TimeoutError as exc:
            note = self._dump_stacks()
            raise DockerUnavailable(f"no answer from dockerd to {method} {url} in {timeout:.0f} s{note}") from exc
        except OSError as exc:
            raise DockerUnavailable(f"no answer from dockerd on {self.sock}: {exc}{self._exit_note()}") from exc
        if status >= 400:
            message = reply.get("message") if isinstance(reply, dict) else None
            raise BackendRefused(str(message or f"HTTP {status} from {method} {url}"))
        return reply

    def _dump_stacks(self) -> str:
        """Ask a daemon that stopped answering where it waits: SIGUSR1 makes dockerd write its goroutines
        to goroutine-stacks-*.log in its root (once a minute at most: stuck calls time out together)."""
        with self._dump_lock:
            if self.proc is None or self.proc.poll() is not None:
                return self._exit_note()
            if time.monotonic() - self._dumped > 60:
                self._dumped = time.monotonic()
                os.kill(self.proc.pid, signal.SIGUSR1)
        return " (dockerd's goroutines went to goroutine-stacks-*.log, kept with the report's engine/ logs)"

    def save_logs(self) -> None:
        """The engine's logs beside the column's report, for the findings (they live in tmpfs otherwise)."""
        if not self.report_dir:
            return
        target = Path(self.report_dir) / "engine"
        target.mkdir(parents=True, exist_ok=True)
        stacks = [f for sub in ("data", "exec") for f in (RUN_DIR / sub).glob("goroutine-stacks-*.log")]
        for found in (*RUN_DIR.glob("*.log"), *stacks):
            with contextlib.suppress(OSError):
                shutil.copy(found, target / found.name)

    def _exit_note(self) -> str:
        """Why the daemon stopped answering, when it is gone (its log names the cause)."""
        if self.proc is None or self.proc.poll() is None:
            return ""
        return f" (dockerd exited with status {self.proc.returncode}: see {RUN_DIR / 'dockerd.log'})"

    def start_our_plugin(self, name: str, failpoint: str | None = None) -> None:
        """Register `ipvlan-driver serve` as a legacy plugin Docker finds in /run/docker/plugins.

        failpoint: the step at which the plugin kills itself (ipvlan_driver/failpoints.py)."""
        if self.plugin is not None:
            return
        sock = Path("/run/docker/plugins") / f"{name}.sock"
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        if not ns.exists(HOST_NETNS):
            ns.create(HOST_NETNS)
        env = {k: v for k, v in os.environ.items() if k != failpoints.ENV}
        if failpoint:
            env[failpoints.ENV] = failpoint
        self.plugin_log = open(RUN_DIR / "plugin.log", "ab")  # noqa: SIM115 - lives as long as the plugin
        self.plugin = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ipvlan_driver.cli",
                "--state-dir",
                str(RUN_DIR / "plugin-state"),
                "serve",
                "--name",
                name,
            ],
            stdout=self.plugin_log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=ns.exec_preparer(HOST_NETNS),
        )
        deadline = time.monotonic() + 120
        while not sock.exists():
            if self.plugin.poll() is not None or time.monotonic() > deadline:
                raise DockerUnavailable(f"ipvlan-driver serve did not open {sock}: see {RUN_DIR / 'plugin.log'}")
            time.sleep(0.2)

    def stop_our_plugin(self) -> None:
        """SIGTERM, as a service manager stops it (a plugin that kills itself has already exited)."""
        if self.plugin is None:
            return
        stop_process(self.plugin, 30)
        self.plugin_log.close()
        self.plugin = None

    def restart_our_plugin(self, name: str, failpoint: str | None = None) -> None:
        self.stop_our_plugin()
        with contextlib.suppress(FileNotFoundError):
            (Path("/run/docker/plugins") / f"{name}.sock").unlink()  # a killed plugin leaves its socket
        self.start_our_plugin(name, failpoint)

    def restart(self) -> None:
        """dockerd stops and starts again on the same data root; --live-restore keeps containers running."""
        self._stop_daemon()
        self.start(fresh=False)

    def start(self, fresh: bool = True) -> None:
        if self.proc is not None:
            return
        dockerd = self._dockerd()
        for sub in ("data", "exec") if fresh else ():
            # a fresh daemon per run: containers and networks of an earlier run (another column in the
            # same VM) would otherwise come back with it
            shutil.rmtree(RUN_DIR / sub, ignore_errors=True)
            (RUN_DIR / sub).mkdir(parents=True, exist_ok=True)
        if not ns.exists(HOST_NETNS):
            ns.create(HOST_NETNS)
        with contextlib.suppress(Exception), Lab(HOST_NETNS) as nl:
            nl.set_up("lo")
        self.log = open(RUN_DIR / "dockerd.log", "wb" if fresh else "ab")  # noqa: SIM115 - as long as dockerd
        self.proc = subprocess.Popen(
            [
                dockerd,
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--data-root",
                str(RUN_DIR / "data"),
                "--exec-root",
                str(RUN_DIR / "exec"),
                "--pidfile",
                str(RUN_DIR / "dockerd.pid"),
                "-H",
                f"unix://{self.sock}",
                "--storage-driver",
                "overlay2",
                # containers outlive a daemon restart (the resilience tier restarts it under them)
                "--live-restore",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=self._env(),
            preexec_fn=ns.exec_preparer(HOST_NETNS),
        )
        if fresh:
            atexit.register(self.stop)
        deadline = time.monotonic() + READY_TIMEOUT
        while self.docker("info", check=False, timeout=60).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise DockerUnavailable(f"dockerd did not come up: see {RUN_DIR / 'dockerd.log'}")
            time.sleep(0.5)
        self.version = self.docker("version", "-f", "{{.Server.Version}}").stdout.strip()
        if fresh and self.docker("image", "inspect", IMAGE, check=False).returncode != 0:
            self._import_image()

    def _import_image(self) -> None:
        busybox = shutil.which("busybox") or "/bin/busybox"
        if not Path(busybox).exists():
            raise DockerUnavailable("busybox is not installed (Debian: apt-get install busybox-static)")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(busybox, arcname="bin/busybox")
            for applet in APPLETS:
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(link)
            for name, text in (("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"), ("etc/group", "root:x:0:\n")):
                data = text.encode()
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        proc = subprocess.run(
            [self.client(), "-H", f"unix://{self.sock}", "import", "-", IMAGE],
            input=buf.getvalue(),
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            raise DockerUnavailable(f"docker import failed: {proc.stderr.decode()[:300]}")

    def _stop_daemon(self) -> None:
        if self.proc is None:
            return
        stop_process(self.proc, 60)
        self.log.close()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            leftover = self.docker("ps", "-aq", check=False, timeout=60).stdout.split()
            if leftover:  # containers' layers stay mounted under the data root while they exist
                self.docker("rm", "-f", *leftover, check=False, timeout=120)
        self._stop_daemon()
        # containerd-shims outlive dockerd (always, with --live-restore): their containers end with the run
        subprocess.run(["pkill", "-f", f"containerd-shim.*{RUN_DIR}"], check=False)
        self.stop_our_plugin()


def _ipam_driver(options: Mapping[str, Any]) -> str | None:
    """The IPAM driver asked for; our plugin is its own (it implements IpamDriver); else Docker's."""
    if options.get("docker_ipam_driver"):
        return str(options["docker_ipam_driver"])
    return OUR_PLUGIN if options.get("docker_driver") == OUR_PLUGIN else None


def _contains(subnet: str, address: str) -> bool:
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        return False  # the daemon names what is malformed


DAEMON = Daemon()
OUR_PLUGIN = "ipvlan-conformance"


def _start(options: Mapping[str, Any]) -> None:
    DAEMON.use_root(options.get("docker_root"))
    DAEMON.report_dir = options.get("report_dir") or None
    if options.get("docker_driver") == OUR_PLUGIN:
        DAEMON.start_our_plugin(OUR_PLUGIN)
    DAEMON.start()


class DockerBackend(BaseBackend):
    OPTIONS = (
        Option(
            "--docker-driver",
            "--backend=docker: the network driver docker uses (ipvlan, or the name of a plugin)",
            default="ipvlan",
        ),
        Option(
            "--docker-ipam-driver",
            "--backend=docker: the IPAM driver (default: Docker's own; with our plugin, the plugin, which "
            "implements IpamDriver too)",
        ),
        Option(
            "--docker-root",
            "--backend=docker: an engine unpacked from its packages (DIR/usr/sbin/dockerd, DIR/usr/bin/docker); "
            "default: the dockerd on PATH",
        ),
    )
    name = "docker"
    # 50 concurrent runs took up to 566 s on Docker 20.10 in the VM; each call may take CALL_TIMEOUT
    patience = 3 * CALL_TIMEOUT

    @staticmethod
    def shutdown() -> None:
        """End of the run: stop the daemon, keep its logs with the report, remove its namespace."""
        DAEMON.stop()
        DAEMON.save_logs()
        ns.remove(HOST_NETNS)

    @staticmethod
    def shared_host_netns(options: Mapping[str, Any]) -> str:
        _start(options)
        return HOST_NETNS

    @staticmethod
    def supported(options: Mapping[str, Any]) -> frozenset[str]:
        """What the running Docker release supports (Debian's 20.10: no l3s, no ipvlan_flag)."""
        _start(options)
        if options.get("docker_driver") == OUR_PLUGIN:
            # our plugin decides l3s and flags itself (Docker passes them through), and has fail points
            return ALL_CAPABILITIES | {"restart", "kill"}
        major = int(DAEMON.version.split(".")[0] or 0)
        gaps = frozenset({"l3s", "flag"})
        for since, lacking in sorted(VERSION_GAPS.items()):
            if major >= since:
                gaps = lacking
        # no "kill": dockerd has no named step to die at, and a kill timed by a clock is no test
        return (ALL_CAPABILITIES - gaps) | {"restart"}

    @staticmethod
    def describe(options: Mapping[str, Any]) -> dict[str, str]:
        driver = str(options.get("docker_driver") or "ipvlan")
        if driver == OUR_PLUGIN:
            driver = f"{our_version()} as plugin {OUR_PLUGIN!r}"
        else:
            driver = f"built-in {driver}" if driver == "ipvlan" else f"plugin {driver!r}"
        ipam = _ipam_driver(options)
        found = {"driver": driver, "ipam": ipam or "Docker's default", "docker": DAEMON.version or "not started"}
        if DAEMON.version:
            # the engine that ran names the column: docker-20.10 and docker-26.1 side by side
            release = ".".join(DAEMON.version.split(".")[:2])
            plugin = str(options.get("docker_driver") or "ipvlan")
            found["column"] = f"docker-{release}" + (f":{plugin}" if plugin != "ipvlan" else "")
        return found

    def __init__(self, host: HostContext) -> None:
        self.host = host
        self.driver = str(host.options.get("docker_driver") or "ipvlan")
        self.ipam_driver = _ipam_driver(host.options) or "default"
        self.capabilities = self.supported(host.options)
        self.networks: list[str] = []
        self.containers: dict[str, str] = {}  # name -> netns name

    def create_network(self, req: NetworkRequest) -> None:
        """Through the API, not `docker network create`: the 20.10 CLI sends the --subnet flags in Go map
        order (measured: 2 of 6 creates of one three-subnet network came out reordered), and the daemon
        hands dynamic addresses from the first subnet it was given, so the CLI makes that a coin toss."""
        config = [{"Subnet": subnet} for subnet in req.subnets]
        for gateway in req.gateways:  # paired with their subnets as the CLI pairs them
            entry = next((e for e in config if _contains(e["Subnet"], gateway)), None)
            if entry is None:
                raise BackendRefused(f"no matching subnet for gateway {gateway}")
            if "Gateway" in entry:
                raise BackendRefused(
                    f"cannot configure multiple gateways ({entry['Gateway']}, {gateway}) "
                    f"for the same subnet ({entry['Subnet']})"
                )
            entry["Gateway"] = gateway
        for rng in req.ip_ranges:
            entry = next((e for e in config if _contains(e["Subnet"], rng.split("/")[0])), None)
            if entry is None:
                raise BackendRefused(f"no matching subnet for range {rng}")
            entry["IPRange"] = rng
        aux: dict[str, dict[str, str]] = {}
        for key, address in req.aux_addresses:
            entry = next((e for e in config if _contains(e["Subnet"], address)), None)
            if entry is None:
                raise BackendRefused(f"no matching subnet for aux-address {address}")
            aux.setdefault(entry["Subnet"], {})[key] = address
        ipam_config = [{**e, "AuxiliaryAddresses": aux[e["Subnet"]]} if e["Subnet"] in aux else e for e in config]
        body = {
            "Name": req.name,
            "CheckDuplicate": True,
            "Driver": self.driver,
            "Options": dict(req.options),
            "Internal": req.internal,
            "EnableIPv6": req.ipv6 or any(":" in s for s in req.subnets),
            # a plugin that is also an IPAM driver decides the addresses too (ours is): Docker's own
            # IPAM would otherwise pick default pools and accept subnets with host bits set itself
            "IPAM": {"Driver": self.ipam_driver, "Config": ipam_config, "Options": {}},
        }
        DAEMON.api("/networks/create", body)
        self.networks.append(req.name)

    def remove_network(self, name: str) -> None:
        DAEMON.docker("network", "rm", name)
        self.networks.remove(name)

    def network_id(self, name: str) -> str | None:
        """Docker's id for a network: a remote driver is told only this, never the name."""
        found = DAEMON.docker("network", "inspect", "-f", "{{.Id}}", name, check=False)
        return found.stdout.strip() or None if found.returncode == 0 else None

    def network_members(self, network: str) -> set[str]:
        out = DAEMON.docker("network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}", network)
        return set(out.stdout.split())

    def run(self, req: ContainerRequest) -> Attached:
        """`docker run -d --net=... [--ip=...] IMAGE sleep`, as the API calls the client makes for it."""
        endpoint: dict[str, Any] = {}
        if req.ip or req.ip6:
            endpoint["IPAMConfig"] = {k: v for k, v in (("IPv4Address", req.ip), ("IPv6Address", req.ip6)) if v}
        body = {
            "Image": IMAGE,
            "Cmd": ["sleep", "86400"],
            "Hostname": req.name,
            # no AppArmor profile loader in a minimal VM: the network is under test, not confinement
            "HostConfig": {"NetworkMode": req.network, "SecurityOpt": ["apparmor=unconfined"]},
            "NetworkingConfig": {"EndpointsConfig": {req.network: endpoint}},
        }
        created = DAEMON.api(f"/containers/create?name={quote(req.name)}", body)
        try:
            DAEMON.api(f"/containers/{created['Id']}/start")
        except BackendRefused:
            # a run refused at start leaves a created container behind, as `docker run` without --rm does
            with contextlib.suppress(BackendRefused):
                DAEMON.api(f"/containers/{created['Id']}?force=1", method="DELETE")
            raise
        pid = int(DAEMON.api(f"/containers/{created['Id']}/json", method="GET")["State"]["Pid"])
        netns_name = self.host.prefix + req.name
        ns.attach(netns_name, pid)
        self.containers[req.name] = netns_name
        return Attached(req.name, netns_name)

    def remove(self, name: str) -> None:
        netns_name = self.containers.pop(name, None)
        if netns_name:
            ns.remove(netns_name)
        DAEMON.api(f"/containers/{quote(name)}?force=1", method="DELETE")

    def restart_driver(self) -> None:
        """The driver restarts with containers running: our plugin process, or dockerd itself."""
        if self.driver == OUR_PLUGIN:
            DAEMON.restart_our_plugin(OUR_PLUGIN)
        else:
            DAEMON.restart()

    def run_killed(self, req: ContainerRequest) -> Attached:
        """Our plugin kills itself in Join with the slave made and is started again at once, as a service
        manager would (Docker's plugin client retries a call while the plugin is away). Docker then either
        fails the run and rolls back or, retrying, completes it: either way nothing may be left over."""
        if self.driver != OUR_PLUGIN:
            raise NotImplementedError("only our plugin has named steps to be killed at")
        DAEMON.restart_our_plugin(OUR_PLUGIN, failpoint="join:slave")
        dying = DAEMON.plugin
        assert dying is not None

        def supervise() -> None:
            dying.wait()
            DAEMON.restart_our_plugin(OUR_PLUGIN)

        supervisor = threading.Thread(target=supervise, name="plugin-supervisor", daemon=True)
        supervisor.start()
        try:
            return self.run(req)
        finally:
            if dying.poll() is None:  # never reached Join: the run failed earlier; stop the trap anyway
                dying.kill()
            supervisor.join(180)

    def exec(self, name: str, argv: Sequence[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return DAEMON.docker("exec", name, *argv, check=False, timeout=timeout)

    def close(self) -> None:
        """Containers, then networks. The daemon outlives the lab, so a network it will not remove would
        refuse the next lab's network on the same parent: that is this lab's error, raised here."""
        for name in list(self.containers):
            with contextlib.suppress(BackendRefused):
                self.remove(name)
        stuck: list[str] = []
        for name in list(self.networks):
            for attempt in range(10):
                try:
                    self.remove_network(name)
                    break
                except BackendRefused as exc:
                    if attempt == 9:
                        stuck.append(f"{name}: {exc}")
                    time.sleep(1)  # a container's endpoint may still be on its way out
        if stuck:
            self.networks.clear()
            raise BackendRefused(f"dockerd kept networks after their containers were removed: {'; '.join(stuck)}")
