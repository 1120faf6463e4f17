"""HTTP over a unix socket: how the suite talks to a plugin and to the Docker daemon's API."""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path
from typing import Any


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.unix_path)
        except OSError:
            sock.close()  # a refused connect must not leave the socket to the garbage collector
            raise
        self.sock = sock


def request_json(path: Path, method: str, url: str, body: Any = None, timeout: float = 60) -> tuple[int, Any]:
    """One request (a JSON body unless None); the status and the decoded reply (None for an empty one)."""
    conn = UnixHTTPConnection(path, timeout=timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, url, data, headers)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw.strip() else None
    finally:
        conn.close()


def post_json(path: Path, url: str, body: Any, timeout: float = 60) -> tuple[int, Any]:
    """POST a JSON body; the status and the decoded reply (None for an empty one)."""
    return request_json(path, "POST", url, body, timeout)
