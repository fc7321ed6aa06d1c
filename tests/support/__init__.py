"""Test support: simulated SNMP agents and SSH devices for the tests and benchmarks (dependencies: the [test] extra)."""
