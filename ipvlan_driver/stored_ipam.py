"""An AddressTable in the state store: one record per handed-out address, so a verb's cost does not grow
with the addresses already handed out.

Each pool keeps a *low mark*: every usable address below it is unavailable (held, the gateway, reserved)
or listed as free (released since the mark passed it). The lowest free address is then the lowest listed
free one, or else the first available address at or above the mark: a lookup or two per allocation, where
reading every held address made the thousandth container on a network cost 1.4x the first.
"""

from __future__ import annotations

import ipaddress

from .errors import StateError
from .ipam import address_of, usable_range
from .model import Pool
from .state import StateStore, address_child, child_key


class StoredTable:
    """The addresses of `scope` (a network's or an IPAM pool's: "networks:<name>", "pools:<id>")."""

    def __init__(self, store: StateStore, scope: str, pools: list[Pool]) -> None:
        self.store = store
        self.scope = scope
        self._pools = pools
        self._ranges = [usable_range(p.subnet) for p in pools]
        self._fixed = [{int(a) for a in (*p.reserved, *([p.gateway] if p.gateway is not None else []))} for p in pools]

    def _key(self, i: int, value: int) -> str:
        return child_key(self.scope, address_child(self._pools[i].subnet.version, value))

    def held(self, owner: str) -> list[str]:
        rec = self.store.get("holders", child_key(self.scope, owner))
        addresses = [] if rec is None else rec.get("addresses", [])
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            raise StateError(f"{self.scope}: the addresses held by {owner!r} are not a list of strings")
        return addresses

    def holder(self, i: int, value: int) -> str | None:
        rec = self.store.get("addresses", self._key(i, value))
        if rec is None:
            return None
        owner = rec.get("owner")
        if not isinstance(owner, str) or not owner:
            raise StateError(f"{self.scope}: address {rec.get('address')!r} has no owner")
        return owner

    def _low(self, i: int) -> int:
        rec = self.store.get("lows", child_key(self.scope, str(i)))
        first, last = self._ranges[i]
        low = rec.get("low") if rec is not None else None
        return low if isinstance(low, int) and first <= low <= last + 1 else first

    def _set_low(self, i: int, low: int) -> None:
        self.store.put("lows", child_key(self.scope, str(i)), {"low": low})

    def lowest_free(self, i: int) -> int | None:
        version = self._pools[i].subnet.version
        first, last = self._ranges[i]
        listed = self.store.first_child("free", self.scope, address_child(version, first), address_child(version, last))
        if listed is not None:
            return int(listed[1:], 16)
        low = value = self._low(i)
        while value <= last and (value in self._fixed[i] or self.store.get("addresses", self._key(i, value))):
            value += 1
        if value != low:
            self._set_low(i, value)  # everything it walked past is held: the next walk starts here
        return value if value <= last else None

    def take(self, i: int, value: int, owner: str) -> None:
        text = str(address_of(self._pools[i].subnet.version, value))
        key = self._key(i, value)
        self.store.delete("free", key)
        self.store.put("addresses", key, {"address": text, "owner": owner})
        self.store.put("holders", child_key(self.scope, owner), {"addresses": [*self.held(owner), text]})
        if value == self._low(i):
            self._set_low(i, value + 1)

    def free(self, owner: str) -> list[str]:
        released = self.held(owner)
        for text in released:
            addr = ipaddress.ip_address(text)
            i = next(
                (j for j, p in enumerate(self._pools) if p.subnet.version == addr.version and addr in p.subnet), None
            )
            if i is None:
                continue
            key = self._key(i, int(addr))
            self.store.delete("addresses", key)
            if int(addr) < self._low(i):
                self.store.put("free", key, {})
        self.store.delete("holders", child_key(self.scope, owner))
        return released

    def addresses(self) -> dict[str, str]:
        """Every held address and its owner (inspect's view; the only read of them all)."""
        return {
            str(rec.get("address")): str(rec.get("owner"))
            for _child, rec in self.store.children("addresses", self.scope)
        }

    def forget(self) -> None:
        """The scope is gone (its network or pool deleted): so is every record kept under it."""
        for kind in ("addresses", "holders", "free", "lows"):
            self.store.delete_children(kind, self.scope)
