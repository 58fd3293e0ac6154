"""`python -m wm_jax.cli` is the `wm` command."""

import sys

from wm_jax.cli import main

sys.exit(main())
