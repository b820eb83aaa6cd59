"""Test and benchmark infrastructure shared by `tests/`, `bench/` and `scripts/`.

Real components only, all on loopback: the service in a child process (`server`), a
fault-injecting proxy in front of the AWS emulator (`faultproxy`), a queue that collects our
events from the emulator's EventBridge (`aws`), stand-ins for the hosted engines answering in
their real formats (`standins`), and the clean environment nothing real can leak into
(`environment`). Pytest fixtures built on these live in `tests/`.

Part of the repository, not of the `batchscribe` distribution: it is never installed or shipped.
"""
