"""Benchmarks of SPEC section 9: `python -m bench.run` (or `make bench`)."""
