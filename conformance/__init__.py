"""The Docker ipvlan documentation as an executable conformance suite (`pytest conformance/`)."""
