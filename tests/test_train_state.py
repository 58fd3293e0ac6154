"""EMA with warm-up: early EMA params follow the trained params, later ones average slowly."""

import jax.numpy as jnp
import numpy as np
import optax

from wm_jax.train import state as state_lib


def test_ema_warms_up_then_averages_with_the_configured_decay():
    params = {"w": jnp.zeros((3,))}
    optimizer = optax.sgd(1.0)
    state = state_lib.init_state(params, optimizer)
    grads = {"w": -jnp.ones((3,))}  # each step moves params by +1
    state = state_lib.apply_gradients(state, grads, optimizer, ema_decay=0.999)
    # Step 0: decay min(0.999, 1/10) = 0.1, so the EMA is 0.9 of the way to the params.
    np.testing.assert_allclose(state.ema_params["w"], 0.9, rtol=1e-6)
    fast = slow = state
    for _ in range(2000):
        fast = state_lib.apply_gradients(fast, grads, optimizer, ema_decay=0.9)
        slow = state_lib.apply_gradients(slow, grads, optimizer, ema_decay=0.999)
    lag = lambda s: float(s.params["w"][0] - s.ema_params["w"][0])
    # The configured decay caps the warm-up: a steady lag of decay / (1 - decay) = 9 steps ...
    assert 8 < lag(fast) < 10
    # ... while 0.999 is still warming up at step 2000: decay (1+s)/(10+s), lag ~ (1+s)/9 ~ 222.
    assert 180 < lag(slow) < 260
