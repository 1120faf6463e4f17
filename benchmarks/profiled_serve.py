"""`python -m benchmarks.profiled_serve OUT ARGV...`: the plugin's `serve`, with every request's handling
(the verb, in the server's worker thread) under one cProfile, written to OUT when the server stops.

cProfile only sees the thread that enables it; the plugin's verbs run in a pool. Requests are serialised
here, which the profile's serial loop does anyway.
"""

from __future__ import annotations

import cProfile
import sys
import threading
import time
from typing import Any

from ipvlan_driver import cli, plugin


def main(argv: list[str]) -> int:
    out, rest = argv[0], argv[1:]
    prof = cProfile.Profile()
    lock = threading.Lock()
    handled = {"requests": 0, "seconds": 0.0}
    original = plugin.PluginServer._handle

    def handle(self: plugin.PluginServer, method: str, raw: bytes) -> Any:
        with lock:
            start = time.perf_counter()
            try:
                return prof.runcall(original, self, method, raw)
            finally:
                handled["requests"] += 1
                handled["seconds"] += time.perf_counter() - start

    plugin.PluginServer._handle = handle  # type: ignore[method-assign]
    try:
        return cli.main(rest)
    finally:
        prof.dump_stats(out)
        with open(out + ".handled", "w") as fh:
            fh.write(f"{handled['requests']} {handled['seconds']}\n")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
