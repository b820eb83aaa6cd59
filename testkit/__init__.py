"""Test infrastructure shared by the test suite, the benchmark and the scripts."""
