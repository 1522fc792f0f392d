"""Fixtures that start a real `batchctl serve` on 127.0.0.1 (owned by the local-server work)."""
