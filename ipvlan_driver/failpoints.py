"""Named steps inside the driver's verbs where a test can kill the process (SIGKILL, no clean-up).

`IPVLAN_DRIVER_FAILPOINT=run:slave ipvlan-driver run ...` dies right after the ipvlan slave exists;
tests/kernel/test_killpoints.py does that at every step below and checks that the next command (or
`restore`) finishes or undoes what the dead one left. Unset, a fail point costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "IPVLAN_DRIVER_FAILPOINT"

POINTS: dict[str, str] = {
    "network-create:intent": "network create: the intent is committed, nothing made yet",
    "network-create:parent": "network create: the VLAN or dummy parent exists, no record yet",
    "network-rm:intent": "network rm: the intent is committed, nothing removed yet",
    "network-rm:parent": "network rm: the parent is deleted, the records are not",
    "run:netns": "run: the container's namespace exists, no slave yet",
    "run:slave": "run: the ipvlan slave exists in the host namespace",
    "run:sandbox": "run: eth0 is addressed and routed in the namespace, no record yet",
    "rm:netns": "rm: the namespace is gone, the records are not",
    "join:slave": "plugin Join: the slave exists, no reply sent",
}


def reached(name: str) -> None:
    if name not in POINTS:
        raise KeyError(f"unknown fail point {name!r}")
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
