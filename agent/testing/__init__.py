"""Test and benchmark doubles that ship with pixloop: the `simulated` backend (real models' failure modes at
configurable rates) and loopback fake servers for every API (`agent.testing.fakes`, needs `pixloop[fakes]`)."""
