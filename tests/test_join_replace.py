"""Join creates the slave first and looks for a leftover of its name only when the kernel says EEXIST."""

from __future__ import annotations

import errno
from typing import Any

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from ipvlan_driver.driver import Driver
from ipvlan_driver.errors import NetlinkFailure


class Recorder:
    """A netlink stand-in for _replace_slave, and its _create_slave that fails the first time with `code`."""

    def __init__(self, code: int) -> None:
        self.code, self.calls = code, list[str]()

    def delete_link(self, name: str) -> bool:
        self.calls.append(f"delete {name}")
        return True

    def create(self, _nl: Any, name: str, _network: Any) -> None:  # set on the class: no driver self
        self.calls.append(f"create {name}")
        if len(self.calls) == 1:
            raise NetlinkFailure("failed to create ipvlan link") from NetlinkError(self.code)


def test_a_name_left_by_an_interrupted_join_is_deleted_and_the_slave_made_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rec = Recorder(errno.EEXIST)
    monkeypatch.setattr(Driver, "_create_slave", rec.create)
    Driver.__new__(Driver)._replace_slave(rec, "iv0", None)  # type: ignore[arg-type]
    assert rec.calls == ["create iv0", "delete iv0", "create iv0"]


def test_any_other_failure_is_raised_and_nothing_is_deleted(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(errno.EPERM)
    monkeypatch.setattr(Driver, "_create_slave", rec.create)
    with pytest.raises(NetlinkFailure):
        Driver.__new__(Driver)._replace_slave(rec, "iv0", None)  # type: ignore[arg-type]
    assert rec.calls == ["create iv0"]
