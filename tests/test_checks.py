"""How the suite decides that a refusal names the network, on the messages real drivers print."""

from __future__ import annotations

import pytest

from conformance.checks import names_network

NET_ID = "29ddf81aa4622c84c0938e84cb320f1f768717042e68f2a0260da5b21644c124"


@pytest.mark.parametrize(
    ("message", "refs", "named"),
    [
        ("parent interface 'eth0.139' is already used by ipvlan network 'v6ipvlan139'", ("v6ipvlan139",), True),
        ("parent eth0 is in use by network db_net.", ("db_net",), True),
        # our plugin under Docker: it is told only the id
        (f"parent interface 'eth0.139' is already used by ipvlan network '{NET_ID}'", ("v6ipvlan139", NET_ID), True),
        ("network 29ddf81aa462 is already using parent interface eth0.139", ("v6ipvlan139", NET_ID), True),
        # Docker's built-in driver: the dummy link's name, not the network
        ("network di-29ddf81aa462 is already using parent interface eth0.139", ("v6ipvlan139", NET_ID), False),
        ("parent interface eth0.139 is busy", ("v6ipvlan139", NET_ID), False),
        ("already used by network db_net_ipv", ("db_net",), False),
        ("already used by network isolated10", ("isolated1",), False),
    ],
)
def test_names_network(message: str, refs: tuple[str, ...], named: bool) -> None:
    assert names_network(message, refs) is named
