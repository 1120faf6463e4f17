"""The project's own tests: unit tests run on any host; tests/kernel needs an ipvlan kernel (the VM)."""

from __future__ import annotations

pytest_plugins = ["pytester"]
