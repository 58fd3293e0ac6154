"""Kept for the command lines in BUILD_NOTES' Core section: now a thin alias of `wm bench`
(wm_jax/bench.py is the one implementation). Arguments are passed through, e.g.

    .venv/bin/python benchmarks/step_latency.py --config tiny --frames 50

is `wm bench --config tiny --frames 50`; see `wm bench --help`.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".cache", "jax"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from experiments.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
