"""The benchmark: `python -m bench` (see docs/operations.md)."""
