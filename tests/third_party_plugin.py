"""A third party's libnetwork remote network driver, as small as the protocol allows, for tests/test_harness.py.

It is not ours and shares nothing with ipvlan_driver: it takes an option of its own (`vni`, a VXLAN id),
refuses one that is not a number in 1..16777215 with its own message, asks libnetwork (GwAllocChecker)
to allocate no IPv4 gateway when `-o routed=1`, hands each endpoint one end of a veth pair (made
with `ip` in the namespace it runs in, the docker host's), and records every request it is sent (method and JSON
body, one line each) in STATE/requests.jsonl so the test can see what arrived.

    python tests/third_party_plugin.py SOCKET STATE
"""

from __future__ import annotations

import http.server
import json
import socketserver
import subprocess
import sys
from pathlib import Path
from typing import Any

VNI_MAX = 2**24 - 1


def answer(method: str, body: dict[str, Any]) -> dict[str, Any]:
    if method == "Plugin.Activate":
        return {"Implements": ["NetworkDriver"]}
    if method == "NetworkDriver.GetCapabilities":
        return {"Scope": "local", "GwAllocChecker": True}
    if method == "NetworkDriver.GwAllocCheck":
        return {"SkipIPv4": body["Options"]["com.docker.network.generic"].get("routed") == "1", "SkipIPv6": False}
    if method == "NetworkDriver.CreateNetwork":
        vni = body["Options"]["com.docker.network.generic"].get("vni", "1")
        if not vni.isdigit() or not 1 <= int(vni) <= VNI_MAX:
            return {"Err": f"thirdparty: vni {vni!r} is not a VXLAN id (1..{VNI_MAX})"}
    if method == "NetworkDriver.Join":
        src = f"tp{body['EndpointID'][:8]}"
        subprocess.run(
            ["ip", "link", "add", src, "type", "veth", "peer", "name", f"tq{body['EndpointID'][:8]}"], check=True
        )
        return {"InterfaceName": {"SrcName": src, "DstPrefix": "eth"}}
    if method == "NetworkDriver.DeleteEndpoint":
        subprocess.run(["ip", "link", "del", f"tq{body['EndpointID'][:8]}"], check=False, capture_output=True)
    return {}  # DeleteNetwork and the rest: nothing to do


class Handler(http.server.BaseHTTPRequestHandler):
    log: Path

    def do_POST(self) -> None:
        method = self.path.lstrip("/")
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.loads(raw or b"{}")
        with self.log.open("a") as f:
            f.write(json.dumps({"method": method, "body": body}) + "\n")
        reply = json.dumps(answer(method, body)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.docker.plugins.v1.2+json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def address_string(self) -> str:
        return "unix"  # a unix socket's peer has no host part to log

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main(socket_path: str, state: str) -> None:
    Path(state).mkdir(parents=True, exist_ok=True)
    Handler.log = Path(state) / "requests.jsonl"
    with Server(socket_path, Handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
