"""Tools for tests and benchmarks: real servers on loopback, never fakes inside rung."""
