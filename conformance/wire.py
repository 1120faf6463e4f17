"""Frames on the wire: an AF_PACKET tap in a topology namespace, VLAN tags restored from auxdata."""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import netnsutil as ns

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 0x10
_AUX = struct.Struct("IIIHHHH")  # struct tpacket_auxdata


def _reinsert_tag(frame: bytes, tci: int, tpid: int) -> bytes:
    # the kernel strips 802.1Q tags into metadata before packet sockets see the frame
    return frame[:12] + struct.pack("!HH", tpid or 0x8100, tci) + frame[12:]


@contextlib.contextmanager
def tap(netns: str, ifname: str) -> Iterator[list[bytes]]:
    """Capture every frame seen on `ifname` for the block; the list fills as frames arrive."""
    sock = ns.run_in(netns, lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)))
    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    sock.bind((ifname, 0))
    frames: list[bytes] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([sock], [], [], 0.1)
            if not ready:
                continue
            data, ancdata, _, _ = sock.recvmsg(65535, socket.CMSG_SPACE(_AUX.size))
            for level, kind, payload in ancdata:
                if level == SOL_PACKET and kind == PACKET_AUXDATA and len(payload) >= _AUX.size:
                    status, _, _, _, _, tci, tpid = _AUX.unpack(payload[: _AUX.size])
                    if status & TP_STATUS_VLAN_VALID:
                        data = _reinsert_tag(data, tci, tpid)
            frames.append(data)

    thread = threading.Thread(target=reader, name=f"tap-{ifname}", daemon=True)
    thread.start()
    try:
        yield frames
    finally:
        stop.set()
        thread.join()
        sock.close()


def send_frame(netns: str, ifname: str, frame: bytes) -> None:
    sock = ns.run_in(netns, lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW))
    try:
        sock.bind((ifname, 0))
        sock.send(frame)
    finally:
        sock.close()


def wait_for(frames: list[bytes], match: Callable[[bytes], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(match(f) for f in list(frames)):
            return True
        time.sleep(0.05)
    return any(match(f) for f in list(frames))
