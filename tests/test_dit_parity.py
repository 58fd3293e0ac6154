"""Parity with an independent PyTorch DiT (tests/torch_dit_reference.py): image weights import one
to one. Tolerance: max abs difference 1e-4 in fp32, relative to outputs of order 1."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch_dit_reference import DiT, sincos_2d  # noqa: E402
from wm_jax import configs, embeddings  # noqa: E402
from conftest import model_apply  # noqa: E402

TOLERANCE = 1e-4


def _linear(module):
    return {"kernel": module.weight.detach().numpy().T, "bias": module.bias.detach().numpy()}


def _params_from_torch(reference: DiT, depth: int, action_dim: int, null_class: int) -> dict:
    """The DiT reference's tensors placed by hand: the test's own mapping, independent of conversion/."""
    width = reference.pos_embed.shape[-1]
    params = {
        "patch_embed": {"proj": {
            "kernel": reference.x_embedder.proj.weight.detach().numpy().transpose(2, 3, 1, 0),
            "bias": reference.x_embedder.proj.bias.detach().numpy(),
        }},
        "t_embed": {"fc1": _linear(reference.t_embedder.mlp[0]), "fc2": _linear(reference.t_embedder.mlp[2])},
        "action_embed": {
            "kernel": np.zeros((action_dim, width), np.float32),
            "bias": reference.y_embedder.embedding_table.weight[null_class].detach().numpy(),
        },
        "final": {"linear": _linear(reference.final_layer.linear),
                  "adaLN": {"linear": _linear(reference.final_layer.adaLN_modulation[1])}},
    }
    for i, block in enumerate(reference.blocks):
        params[f"spatial_{i}"] = {
            "attn": {"qkv": _linear(block.attn.qkv)},
            "proj": _linear(block.attn.proj),
            "mlp": {"fc1": _linear(block.mlp.fc1), "fc2": _linear(block.mlp.fc2)},
            "adaLN": {"linear": _linear(block.adaLN_modulation[1])},
        }
    return jax.tree_util.tree_map(jnp.asarray, params)


def test_position_embedding_matches_reference_ordering():
    np.testing.assert_allclose(embeddings.sincos_2d(64, 6, 6), sincos_2d(64, 6), atol=1e-6)


def test_timestep_embedding_features_are_cos_first():
    features = np.asarray(embeddings.timestep_features(jnp.array([0.0, 500.0])))
    np.testing.assert_allclose(features[0, :128], 1.0)
    np.testing.assert_allclose(features[0, 128:], 0.0)


@pytest.mark.parametrize("learn_sigma", [True, False])
def test_image_model_matches_pytorch_dit(learn_sigma):
    torch.manual_seed(0)
    size, patch, channels, width, depth, heads, classes = 16, 2, 4, 96, 3, 4, 10
    # PyTorch's default init everywhere (no adaLN-Zero), so every path carries signal.
    reference = DiT(size, patch, channels, width, depth, heads, classes, learn_sigma).eval()
    config = configs.get_config(
        "tiny", latent_size=(size, size), in_channels=channels, patch_size=patch, width=width, depth=depth,
        num_heads=heads, out_channels=2 * channels if learn_sigma else None, temporal_every=0, max_frames=1,
    )
    params = _params_from_torch(reference, depth, config.action_dim, null_class=classes)

    rng = np.random.default_rng(0)
    x_BCHW = rng.standard_normal((2, channels, size, size)).astype(np.float32)
    t = np.array([0.3, 0.85], np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x_BCHW), torch.from_numpy(1000 * t), torch.tensor([classes, classes]))
    x_BTHWC = jnp.asarray(x_BCHW.transpose(0, 2, 3, 1))[:, None]
    actions = jnp.zeros((2, 1, config.action_dim))
    got = model_apply(config)(params, x_BTHWC, jnp.asarray(t)[:, None], actions)
    expected_BHWC = expected.numpy().transpose(0, 2, 3, 1)
    assert np.abs(expected_BHWC).max() > 0.5
    np.testing.assert_allclose(np.asarray(got[:, 0]), expected_BHWC, atol=TOLERANCE, rtol=0)
