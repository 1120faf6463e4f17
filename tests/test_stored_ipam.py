"""Schema 2: a network's endpoints and its pools' addresses as records of their own.

The stored table must hand out exactly what the in-memory one does (lowest free first, a released
address back at once), and a schema-1 database must come out of its migration with nothing lost.
"""

from __future__ import annotations

import ipaddress
import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipvlan_driver.driver import Driver, DriverConfig, Network, address_scope
from ipvlan_driver.errors import ConflictError, DriverError
from ipvlan_driver.ipam import Ipam, build_pools
from ipvlan_driver.model import Pool
from ipvlan_driver.options import network_spec
from ipvlan_driver.parents import plan_parent
from ipvlan_driver.remote_ipam import RemoteIpam
from ipvlan_driver.state import DB_NAME, StateStore
from ipvlan_driver.stored_ipam import StoredTable

# small subnets so that a short sequence reaches exhaustion; the v6 one exercises the other family
SUBNETS = ["10.9.0.0/29", "10.9.1.0/30", "2001:db8:9::/125"]
Op = tuple[str, int, int | None]  # (allocate|release, owner, requested address's offset or None)


def _pools() -> list[Pool]:
    spec = network_spec("diff", subnets=SUBNETS, options={"ipvlan_mode": "l3"})
    return build_pools(spec, None)


def _outcome(ipam: Ipam, op: Op) -> tuple[str, object]:
    verb, owner, offset = op
    name = f"c{owner}"
    try:
        if verb == "release":
            return ("released", sorted(map(str, ipam.release(name))))
        family = 6 if owner % 3 == 0 else 4
        requested = None
        if offset is not None:
            net = ipaddress.ip_network(SUBNETS[2] if family == 6 else SUBNETS[offset % 2])
            requested = net.network_address + offset
        return ("given", str(ipam.allocate(name, family, requested).ip))
    except DriverError as exc:
        return ("refused", f"{type(exc).__name__}: {exc}")


OPS = st.lists(
    st.tuples(st.sampled_from(["allocate", "allocate", "release"]), st.integers(0, 9), st.none() | st.integers(0, 8)),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(ops=OPS)
def test_stored_table_hands_out_what_the_memory_table_does(
    tmp_path_factory: pytest.TempPathFactory, ops: list[Op]
) -> None:
    store = StateStore(tmp_path_factory.mktemp("diff"))
    memory = Ipam(_pools())
    stored_pools = _pools()
    stored = Ipam(stored_pools, StoredTable(store, "networks:diff", stored_pools))
    for op in ops:
        expected = _outcome(memory, op)
        with store.transaction():
            got = _outcome(stored, op)
        assert got == expected, op
        if expected[0] == "given":
            assert stored.owner_of(ipaddress.ip_address(expected[1])) == f"c{op[1]}"
    fresh = Ipam(stored_pools, StoredTable(store, "networks:diff", stored_pools))  # another process's view
    assert _outcome(fresh, ("allocate", 1, None)) == _outcome(memory, ("allocate", 1, None))


def test_a_released_address_below_the_mark_comes_back_first(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    pools = _pools()
    ipam = Ipam(pools, StoredTable(store, "networks:diff", pools))
    given_ = [str(ipam.allocate(f"c{i}", 4)) for i in range(4)]
    assert given_ == ["10.9.0.2/29", "10.9.0.3/29", "10.9.0.4/29", "10.9.0.5/29"]
    ipam.release("c1")
    assert str(ipam.allocate("c9", 4)) == "10.9.0.3/29"
    assert str(ipam.allocate("c10", 4)) == "10.9.0.6/29"
    with pytest.raises(ConflictError, match="in use by container 'c9'"):
        ipam.allocate("c11", 4, ipaddress.ip_address("10.9.0.3"))


def _driver(tmp_path: Path) -> Driver:
    driver = Driver(DriverConfig(state_dir=tmp_path / "state"))
    spec = network_spec("db_net", subnets=["192.168.1.0/24"], options={"parent": "eth9"})
    pools = build_pools(spec, None)
    network = Network(spec, "0" * 64, plan_parent(spec, "0" * 64, lambda _n: True), Ipam(pools))
    driver.store.put("networks", "db_net", network.to_json())
    return driver


def test_a_network_record_does_not_grow_with_its_endpoints(tmp_path: Path) -> None:
    driver = _driver(tmp_path)
    before = driver.store.get("networks", "db_net")
    for i in range(20):
        driver.create_endpoint("db_net", f"c{i}")
    assert driver.store.get("networks", "db_net") == before
    assert sorted(driver.endpoints("db_net")) == sorted(f"c{i}" for i in range(20))
    assert driver.endpoint_addresses("db_net", "c19") == [ipaddress.ip_interface("192.168.1.21/24")]


def test_deleting_a_network_deletes_what_is_kept_under_it(tmp_path: Path) -> None:
    driver = _driver(tmp_path)
    driver.create_endpoint("db_net", "c1")
    driver._forget_endpoint("db_net", "c1")
    driver.create_endpoint("db_net", "c2")
    with driver.store.lock(), driver.store.transaction():
        driver._forget_addresses("db_net")
    conn = sqlite3.connect(tmp_path / "state" / DB_NAME)
    left = conn.execute("SELECT kind, key FROM records WHERE kind NOT IN ('networks')").fetchall()
    assert left == []


def test_an_ipam_pool_released_and_requested_again_starts_empty(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    ipam = RemoteIpam(store, lambda: [])
    grant = ipam.request_pool("LocalIpvlan", "10.5.0.0/24", None, v6=False)
    assert str(ipam.request_address(grant.pool_id, None, gateway=True)) == "10.5.0.1/24"
    assert str(ipam.request_address(grant.pool_id, None, gateway=False)) == "10.5.0.2/24"
    ipam.release_pool(grant.pool_id)
    grant = ipam.request_pool("LocalIpvlan", "10.5.0.0/24", None, v6=False)
    assert str(ipam.request_address(grant.pool_id, None, gateway=True)) == "10.5.0.1/24"


def test_schema_1_records_are_split_with_nothing_lost(tmp_path: Path) -> None:
    """A database written by the previous release: the whole network in one record."""
    root = tmp_path / "state"
    root.mkdir()
    network = {
        "name": "db_net",
        "id": "0" * 64,
        "subnets": ["192.168.1.0/24", "2001:db8:1::/64"],
        "gateways": [],
        "parent_option": "eth9",
        "mode": "l2",
        "flag": "bridge",
        "internal": False,
        "ipv6": True,
        "parent": {"kind": "existing", "name": "eth9", "link": None, "vlan_id": None},
        "pools": [
            {"subnet": "192.168.1.0/24", "gateway": "192.168.1.1", "reserved": [], "allocated": {"192.168.1.2": "c1"}},
            {
                "subnet": "2001:db8:1::/64",
                "gateway": "2001:db8:1::1",
                "reserved": [],
                "allocated": {"2001:db8:1::2": "c1"},
            },
        ],
        "containers": {"c1": ["192.168.1.2/24", "2001:db8:1::2/64"]},
    }
    pool = {"pools": [{"subnet": "10.5.0.0/24", "gateway": None, "reserved": [], "allocated": {"10.5.0.1": "gateway"}}]}
    with sqlite3.connect(root / DB_NAME) as conn:
        conn.execute(
            "CREATE TABLE records (kind TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (kind, key))"
        )
        conn.execute(
            "CREATE TABLE intents (id INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT, pid INTEGER, started REAL)"
        )
        conn.execute(
            "CREATE TABLE quarantine (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT, key TEXT, data TEXT, "
            "reason TEXT, at REAL)"
        )
        conn.execute("INSERT INTO records VALUES ('networks', 'db_net', ?)", (json.dumps(network),))
        conn.execute("INSERT INTO records VALUES ('pools', 'LocalIpvlan/10.5.0.0/24', ?)", (json.dumps(pool),))
        conn.execute("INSERT INTO records VALUES ('networks', 'bent', ?)", (json.dumps({"pools": "not a list"}),))
        conn.execute("PRAGMA user_version=1")
    conn.close()
    driver = Driver(DriverConfig(state_dir=root))
    assert driver.endpoints("db_net") == {"c1": ["192.168.1.2/24", "2001:db8:1::2/64"]}
    record = driver.store.get("networks", "db_net")
    assert record is not None and "containers" not in record and all("allocated" not in p for p in record["pools"])
    assert [key for _kind, key, _why in driver.store.quarantined()] == ["bent"]
    with driver.store.lock(), driver.store.transaction():
        again = driver._reserve(driver.get_network("db_net"), "c2", None, None)
    assert [str(a) for a in again] == ["192.168.1.3/24", "2001:db8:1::3/64"]  # c1's addresses stayed held
    table = StoredTable(driver.store, address_scope("db_net"), driver.get_network("db_net").pools.pools)
    assert table.addresses()["2001:db8:1::2"] == "c1"
    remote = RemoteIpam(driver.store, lambda: [])
    assert str(remote.request_address("LocalIpvlan/10.5.0.0/24", None, gateway=False)).startswith("10.5.0.2/")


def test_rm_takes_only_its_own_lines_out_of_the_hosts_file(tmp_path: Path) -> None:
    driver = _driver(tmp_path)
    for name in ("localhost", "web", "web2"):
        addresses = driver.create_endpoint("db_net", name)
        driver._add_to_hosts("db_net", name, addresses)
    driver._forget_endpoint("db_net", "localhost")
    driver._forget_endpoint("db_net", "web")
    lines = driver._hosts_path("db_net").read_text().splitlines()
    assert lines == ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", "192.168.1.4\tweb2"]
