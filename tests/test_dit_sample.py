"""`wm sample` (issue 16): class-conditional images from a converted DiT, as DiT's sample.py makes
them, against a PyTorch loop written from DiT's public description (tests/torch_reference_dit_sampling.py
for classifier-free guidance on 3 channels, tests/torch_reference_samplers.py for DDPM / DDIM over
guided-diffusion's respacing): a tiny random DiT (PyTorch default init, learned sigma, 12 latent
channels so the 3-channel guidance shows), the same starting noise and the same ancestral noise
(drawn by wm_jax, injected into torch).

Tolerance: |wm_jax - torch| <= ATOL + RTOL·|torch|, ATOL = RTOL = 1e-4, fp32 on both sides. A
random ε-predictor's samples reach |x| ~ 10³ (x̂_0 = (x - √(1-ᾱ)·ε̂)/√ᾱ, and 1/√ᾱ = 157 at the
first step); the largest error measured is 6e-4, 5e-7 of the largest value.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wm_jax.conversion.layouts import dit
from wm_jax import class_conditional, diffusion
from wm_jax.diffusion import SamplerConfig

torch = pytest.importorskip("torch")
import torch_reference_samplers as ref  # noqa: E402
from test_conversion_dit import convert_cli  # noqa: E402
from torch_dit_reference import DiT  # noqa: E402
from torch_reference_dit_sampling import guided_model  # noqa: E402

SIZE, PATCH, CHANNELS, WIDTH, DEPTH, HEADS, CLASSES = 8, 2, 12, 32, 2, 4, 10
BATCH, LABEL = 2, 3
ATOL = RTOL = 1e-4


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    reference = DiT(SIZE, PATCH, CHANNELS, WIDTH, DEPTH, HEADS, CLASSES, learn_sigma=True).eval()
    sd = {k: v.detach().numpy().copy() for k, v in reference.state_dict().items()}
    converted = dit.convert(sd, heads=HEADS)
    config = converted.config.replace(**dit.OBJECTIVE)
    return reference, config, jax.tree_util.tree_map(jnp.asarray, converted.params), converted.class_table


def _noise(seed=1):
    return np.random.default_rng(seed).standard_normal((BATCH, SIZE, SIZE, CHANNELS)).astype(np.float32)


def _nchw(x):
    return torch.from_numpy(np.array(x).transpose(0, 3, 1, 2))


def _torch_sample(reference, method, steps, cfg, eta, rng, guided=3):
    """DiT's loop in torch, with wm_jax's ancestral draws (normal(fold_in(rng, k)) at step k) injected."""
    abar = torch.from_numpy(np.array(diffusion.alphas_cumprod("linear", 1000)))
    noises = [_nchw(jax.random.normal(jax.random.fold_in(rng, k), (BATCH, SIZE, SIZE, CHANNELS))) for k in range(steps)]
    model = guided_model(reference, torch.full((BATCH,), LABEL), CLASSES, cfg, guided)
    if method == "ddpm":
        out = ref.ddpm_loop(model, _nchw(_noise()), abar, steps, "epsilon", True, noises, spacing="dit")
    else:
        out = ref.ddim_loop(model, _nchw(_noise()), abar, steps, "epsilon", eta=eta, noises=noises, spacing="dit")
    return out.numpy().transpose(0, 2, 3, 1)


def _close(got, expected):
    assert np.abs(expected).max() > 0.3 and np.all(np.isfinite(got))  # a real sample
    print(f"max |x| {np.abs(expected).max():.3g}, max error {np.abs(got - expected).max():.3g}")
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("steps", [1, 2, 3, 7, 25, 250, 1000])
def test_dit_spacing_is_guided_diffusion_respacing(steps):
    expected = ref.dit_respacing(1000, steps).numpy()[::-1]
    got = diffusion.ddpm_timesteps(1000, steps, "dit")
    np.testing.assert_array_equal(got, expected)
    assert got[-1] == 0 and (steps == 1 or got[0] == 999)


CASES = {
    # method, steps, cfg, eta
    "ddpm_cfg4": ("ddpm", 6, 4.0, 0.0),  # sample.py's sampler and guidance, fewer steps
    "ddim_cfg1.5": ("ddim", 5, 1.5, 0.0),
    "ddim_eta1_no_guidance": ("ddim", 5, 1.0, 1.0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_wm_sample_matches_dit_sampler(models, case):
    reference, config, params, table = models
    method, steps, cfg, eta = CASES[case]
    rng = jax.random.key(5)
    class_D, null_D = class_conditional.class_rows(table, LABEL)
    sampler = class_conditional.dit_sampler(steps, method, eta)
    got = np.asarray(class_conditional.make_sample(config, sampler, cfg)(params, class_D, null_D, jnp.asarray(_noise()), rng))
    _close(got, _torch_sample(reference, method, steps, cfg, eta, rng))


def test_guidance_on_three_channels_is_dits_and_all_channels_differs(models):
    """DiT guides ε channels 0..2 only: the result differs from guiding all 12 (the standard rule),
    which `--guide-all-channels` gives and the torch loop with 12 guided channels matches."""
    reference, config, params, table = models
    rng = jax.random.key(6)
    class_D, null_D = class_conditional.class_rows(table, LABEL)
    sampler = class_conditional.dit_sampler(3, "ddim")
    three = np.asarray(class_conditional.make_sample(config, sampler, 1.5)(params, class_D, null_D, jnp.asarray(_noise()), rng))
    every = np.asarray(class_conditional.make_sample(config, sampler, 1.5, None)(params, class_D, null_D, jnp.asarray(_noise()), rng))
    assert np.abs(three - every).max() > 1e-2
    _close(every, _torch_sample(reference, "ddim", 3, 1.5, 0.0, rng, guided=CHANNELS))


def test_bad_input_gets_a_clear_error(models):
    _, config, _, table = models
    with pytest.raises(ValueError, match=r"class 10 is out of range: this DiT's class table has 10 classes \(0..9\)"):
        class_conditional.class_rows(table, CLASSES)
    with pytest.raises(ValueError, match=r"class -1 is out of range"):
        class_conditional.class_rows(table, -1)
    with pytest.raises(ValueError, match=r"sampler 'euler' does not fit the model's objective, DDPM epsilon prediction with learned sigma"):
        class_conditional.make_sample(config, SamplerConfig(method="euler"), 4.0)


def test_cli_converts_samples_and_explains(tmp_path, models, capsys):
    from wm_jax import cli

    reference, config, params, table = models
    torch.save(reference.state_dict(), tmp_path / "dit.pt")
    assert convert_cli([tmp_path / "dit.pt", tmp_path / "m", "--layout", "dit", "--heads", HEADS]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "m" / "class_table.npy"), table)
    capsys.readouterr()

    base = ["sample", "--checkpoint", str(tmp_path / "m"), "--class", str(LABEL), "--steps", "3", "--n", "5", "--seed", "2"]
    assert cli.main(base + ["--out", str(tmp_path / "z.npy")]) == 0
    assert "ddpm 3 steps" in capsys.readouterr().out
    # The CLI's draws: seed -> (starting noise, ancestral noise).
    rng_noise, rng_steps = jax.random.split(jax.random.key(2))
    noise = jax.random.normal(rng_noise, (5, SIZE, SIZE, CHANNELS))
    class_D, null_D = class_conditional.class_rows(table, LABEL)
    expected = class_conditional.make_sample(config, class_conditional.dit_sampler(3), 4.0)(params, class_D, null_D, noise, rng_steps)
    np.testing.assert_allclose(np.load(tmp_path / "z.npy"), np.asarray(expected), atol=1e-5, rtol=0)

    assert cli.main(base + ["--autoencoder", "pixel_p2", "--out", str(tmp_path / "grid.png")]) == 0
    from PIL import Image

    assert Image.open(tmp_path / "grid.png").size == (4 * 2 * SIZE, 2 * 2 * SIZE)  # 5 images, 4 a row, 16x16 each

    for extra, message in [
        (["--class", "10"], "class 10 is out of range"),
        (["--sampler", "ddim", "--eta", "-1"], "eta must be >= 0"),
        (["--sampler", "euler"], "sampler 'euler' does not fit the model's objective, DDPM epsilon prediction"),
        (["--out", str(tmp_path / "g.png")], "pass --autoencoder"),
        (["--autoencoder", "pixel_p1", "--out", str(tmp_path / "g.png")], "3-channel latents; the DiT's have 12"),
    ]:
        argv = base + ["--out", str(tmp_path / "z.npy")] + extra
        assert cli.main(argv) == 2, extra
        assert message in capsys.readouterr().err
    (tmp_path / "m" / "class_table.npy").unlink()
    assert cli.main(base + ["--out", str(tmp_path / "z.npy")]) == 2
    assert "has no class_table.npy" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["sample", "--help"])
    assert "classifier-free guidance" in capsys.readouterr().out
