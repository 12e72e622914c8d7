"""Developer tooling: the local runner and its demo data (importable by the tests)."""
