"""wm_jax: interactive world models in JAX/Flax (XLA only)."""

__version__ = "0.1.0"
