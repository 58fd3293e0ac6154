"""The `wm` command: thin scripts over the wm_jax library, and the gin experiment configs."""
