"""The CLI, one process per command, without paying Python's start-up for each: a fork server.

Under emulation a fresh `ipvlan-driver` process spends seconds importing itself (pyroute2 loads every
netlink family it has) before it does anything. The zygote imports the CLI once, then forks a child per
command: the child gets the caller's stdin, stdout and stderr (passed over a unix socket), runs
`ipvlan_driver.cli.main(argv)` — what the `ipvlan-driver` console script runs — and exits with its status.
Each command is still a process of its own that shares no memory with the next, and reads and writes the
state directory as it would from a shell; only the interpreter and the imports are inherited.

Protocol, one connection per command: the client sends one JSON line (the argv) with three descriptors;
the zygote answers `{"pid": N}` once forked and `{"code": C}` when the child has exited.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]


def _child(argv: list[str], fds: list[int], keep_closed: list[socket.socket]) -> None:
    for sock in keep_closed:
        sock.close()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    code = 1
    try:
        from ipvlan_driver import cli

        code = cli.main(argv)
    except SystemExit as exc:  # argparse's --help and usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve(path: str) -> None:
    """The zygote's loop: accept, fork, report; single-threaded so forking is safe."""
    import ipvlan_driver.cli  # noqa: F401 (the import is the point: children inherit it)

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    children: dict[int, socket.socket] = {}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        ready, _, _ = select.select([listener], [], [], 0.02)
        if ready:
            conn, _ = listener.accept()
            message, fds, _, _ = socket.recv_fds(conn, 65536, 3)
            argv = json.loads(message.decode())
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _child(argv, list(fds), [listener, conn, *children.values()])
            for fd in fds:
                os.close(fd)
            conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
            children[pid] = conn
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            conn = children.pop(pid)
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps({"code": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
            conn.close()


class Forked:
    """A command forked by the zygote: Popen's wait/kill, and pipes when asked for."""

    def __init__(self, conn: socket.socket, stdin: IO[str] | None, stdout: IO[str] | None) -> None:
        self._conn, self._pending = conn, b""
        self.stdin, self.stdout = stdin, stdout
        self.pid = int(json.loads(self._line(None) or b"{}")["pid"])
        self.returncode: int | None = None

    def _line(self, timeout: float | None) -> bytes:
        """The zygote's next message ("" once it hung up); a raw recv, so a timeout leaves it usable."""
        self._conn.settimeout(timeout)
        while b"\n" not in self._pending:
            chunk = self._conn.recv(4096)
            if not chunk:
                return b""
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            try:
                line = self._line(timeout)
            except TimeoutError:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0) from None
            self.returncode = int(json.loads(line)["code"]) if line else 1
            self._conn.close()
        return self.returncode

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)


class Zygote:
    def __init__(self, path: Path) -> None:
        self.path = path
        code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from tests.cli_forks import serve; serve(sys.argv[1])"
        self._proc = subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=ROOT)
        deadline = time.monotonic() + 120  # its imports take seconds under emulation
        while not path.exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the CLI zygote never listened on {path}")
            time.sleep(0.05)

    def _send(self, argv: Sequence[str], fds: list[int]) -> socket.socket:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(str(self.path))
        socket.send_fds(conn, [json.dumps(list(argv)).encode()], fds)
        return conn

    def popen(self, argv: Sequence[str]) -> Forked:
        """Like Popen with stdin and stdout pipes (stderr joins stdout), text mode."""
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        try:
            conn = self._send(argv, [in_r, out_w, out_w])
        finally:
            os.close(in_r)
            os.close(out_w)
        return Forked(conn, os.fdopen(in_w, "w"), os.fdopen(out_r, "r"))

    def run(self, argv: Sequence[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Like subprocess.run(capture_output=True, text=True), stdin from /dev/null."""
        with open(os.devnull) as null, tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            proc = Forked(self._send(argv, [null.fileno(), out.fileno(), err.fileno()]), None, None)
            try:
                code = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)  # the zygote reports the killed child, and the connection closes
                raise
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(list(argv), code, out.read(), err.read())

    def close(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


@contextlib.contextmanager
def zygote() -> Iterator[Zygote]:
    with tempfile.TemporaryDirectory(prefix="cli-zygote-") as tmp:
        z = Zygote(Path(tmp) / "zygote.sock")
        try:
            yield z
        finally:
            z.close()
