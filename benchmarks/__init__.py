"""Benchmarks of the driver against the kernel's floor: `benchmarks/all.py`, run through `ci/bench`."""
