"""One strict rename/transpose table per source model family (see conversion/table.py)."""
