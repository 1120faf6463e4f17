"""The plugin's IPAM half (libnetwork's IpamDriver): pools and addresses handed to Docker.

With Docker's own IPAM, what the docs say about addresses is decided by the engine, not by the network
driver: which default pool a network without --subnet gets, and whether a --subnet with host bits set is
refused. `docker network create --ipam-driver=<plugin>` hands those decisions to this class, which makes
them the way the reference driver does: the first default pool free on the host, canonical subnets only,
the gateway (or, without one, the first usable address) requested first, containers from the next one.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from .errors import ConfigError, ConflictError, IpamError, NotFoundError
from .ipam import Ipam, default_pool, pools_from_json, pools_to_json
from .model import IPAddress, IPInterface, IPNetwork, Pool
from .options import parse_subnet
from .state import StateStore
from .stored_ipam import StoredTable

GATEWAY_OWNER = "gateway"


@dataclass(frozen=True)
class PoolGrant:
    pool_id: str
    subnet: IPNetwork


def pool_id(space: str, subnet: IPNetwork) -> str:
    # readable in Docker's `network inspect` and in our logs, and unique per address space
    return f"{space}/{subnet}"


class RemoteIpam:
    """Pools by id, persisted one record per pool; each pool's addresses managed by the driver's Ipam, one
    record per address (stored_ipam)."""

    def __init__(self, store: StateStore, taken: Callable[[], list[IPNetwork]]) -> None:
        self.store = store
        self.taken = taken  # the host's addresses and routes, and the networks' subnets

    def request_pool(self, space: str, pool: str | None, sub_pool: str | None, v6: bool) -> PoolGrant:
        if sub_pool:
            raise ConfigError(f"--ip-range {sub_pool} is not supported: give the whole --subnet")
        with self.store.lock():
            ours = [p.subnet for p in self._all()]
            if pool:
                subnet = parse_subnet(pool)
                if subnet.version != (6 if v6 else 4):
                    raise ConfigError(f"subnet {subnet} is not an IPv{6 if v6 else 4} subnet")
                clash = next((o for o in ours if o.version == subnet.version and o.overlaps(subnet)), None)
                if clash is not None:
                    raise ConflictError(f"subnet {subnet} overlaps {clash}, already in use by another network")
            elif v6:
                raise IpamError("no default IPv6 pool: give an IPv6 --subnet")
            else:
                subnet = default_pool([*self.taken(), *ours])
            grant = PoolGrant(pool_id(space, subnet), subnet)
            with self.store.transaction():
                self._table(grant.pool_id, []).forget()  # a pool of this id before: its leftovers
                self.store.put("pools", grant.pool_id, {"pools": pools_to_json([Pool(subnet=subnet, gateway=None)])})
            return grant

    def release_pool(self, pid: str) -> None:
        with self.store.lock(), self.store.transaction():
            self.store.delete("pools", pid)
            self._table(pid, []).forget()

    def request_address(self, pid: str, address: IPAddress | None, gateway: bool) -> IPInterface:
        """The gateway is asked for first (Docker does, for every network): without an explicit one it is the
        first usable address, so containers start at the second, as the docs' outputs show."""
        with self.store.lock(), self.store.transaction():
            ipam = self._load(pid)
            owner = GATEWAY_OWNER if gateway else f"ep-{secrets.token_hex(6)}"
            return ipam.allocate(owner, ipam.pools[0].subnet.version, address)

    def release_address(self, pid: str, address: IPAddress) -> None:
        with self.store.lock(), self.store.transaction():
            try:
                ipam = self._load(pid)
            except NotFoundError:
                return  # the pool went first: nothing is held any more
            owner = ipam.owner_of(address)
            if owner is not None:
                ipam.release(owner)

    def _table(self, pid: str, pools: list[Pool]) -> StoredTable:
        return StoredTable(self.store, f"pools:{pid}", pools)

    def _pools(self, pid: str) -> list[Pool]:
        rec = self.store.get("pools", pid)
        if rec is None:
            raise NotFoundError(f"no address pool {pid!r}")
        return pools_from_json(rec["pools"])

    def _load(self, pid: str) -> Ipam:
        pools = self._pools(pid)
        return Ipam(pools, self._table(pid, pools))

    def _all(self) -> list[Pool]:
        return [p for key in self.store.keys("pools") for p in self._pools(key)]
