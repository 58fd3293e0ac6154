"""Objectives and samplers (issue 16, part 1): each sampler's whole loop against a PyTorch
reference written from the public description (tests/torch_reference_samplers.py), the beta
schedules against their published formulas, and the errors a misfit gets.

The model in the loop parity tests is a tiny deterministic function of (x, t), the same formula
in JAX and in torch: the exact prediction for Gaussian data N(μ, I), plus a smooth perturbation
so no step is trivially exact. Noise after the start is drawn by wm_jax
(fold_in(rng, k) at step k) and injected into the torch loop.
"""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wm_jax import configs, diffusion, rollout
from wm_jax import model as wm_model
from wm_jax.diffusion import Objective, SamplerConfig

torch = pytest.importorskip("torch")
import torch_reference_samplers as ref  # noqa: E402

SHAPE = (2, 4, 4, 3)  # B, H, W, C
# fp32 loops of up to 50 steps: |wm_jax - torch| <= ATOL + RTOL·|torch| (BUILD_NOTES, issue 16).
ATOL, RTOL = 1e-5, 1e-5


def _mu():
    return np.random.default_rng(7).standard_normal(SHAPE).astype(np.float32)


def _noise(seed=1):
    return np.random.default_rng(seed).standard_normal(SHAPE).astype(np.float32)


def _nchw(x):
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2)))


def _nhwc(x):
    return x.numpy().transpose(0, 2, 3, 1)


def toy_ddpm(objective: Objective, lib):
    """model(x, t) for wm_jax (lib = jnp, t = i/N) or torch (lib = torch, t = the integer step):
    [ε or v, and for a learned sigma a variance value in (-1, 1)] in the last (jnp) or second
    (torch) axis. The exact prediction for data N(μ, I), whose x̂_0 = μ + √ᾱ·(x - √ᾱ·μ) carries
    the input (so every injected noise reaches the sample), plus a smooth perturbation."""
    n, abar_all = objective.diffusion_steps, objective.alphas_cumprod()
    torch_side = lib is torch
    mu = _nchw(_mu()) if torch_side else jnp.asarray(_mu())

    def model(x, t):
        i = int(t) if torch_side else int(round(t * n))
        level = i / n
        a = float(abar_all[i])
        r = x - math.sqrt(a) * mu
        eps, x0 = math.sqrt(1 - a) * r, mu + math.sqrt(a) * r
        wobble = 0.05 * lib.tanh(x + 2 * level)
        if objective.prediction == "epsilon":
            pred = eps + math.sqrt(a) * wobble  # x̂_0 off by at most 0.05·√(1-ᾱ)
        else:
            pred = math.sqrt(a) * eps - math.sqrt(1 - a) * x0 + wobble
        if not objective.learned_sigma:
            return pred
        variance = lib.tanh(0.5 * x - level)
        return torch.cat([pred, variance], dim=1) if torch_side else jnp.concatenate([pred, variance], axis=-1)

    return model


def toy_velocity(lib):
    """The exact velocity E[ε - x_0 | x_t] for data N(μ, I) on the flow path, plus a perturbation."""
    mu = _nchw(_mu()) if lib is torch else jnp.asarray(_mu())

    def velocity(x, t):
        t = float(t)
        r = (x - (1 - t) * mu) / ((1 - t) ** 2 + t**2)
        return t * r - (mu + (1 - t) * r) + 0.05 * lib.tanh(x + 2 * t)

    return velocity


def _step_noises(rng, steps):
    return [jax.random.normal(jax.random.fold_in(rng, k), SHAPE, jnp.float32) for k in range(steps - 1)]


def _close(got, expected):
    got, expected = np.asarray(got), np.asarray(expected)
    assert np.abs(expected).max() > 0.3  # a real sample, not zeros
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=RTOL)
    return float(np.abs(got - expected).max())


# ----------------------------------------------------------------------------- schedules


def test_beta_schedules_are_the_published_formulas():
    n = 1000
    linear, cosine, sigmoid = (diffusion.alphas_cumprod(s, n) for s in ("linear", "cosine", "sigmoid"))
    for schedule in ("linear", "cosine", "sigmoid"):
        betas = diffusion.BETA_SCHEDULES[schedule](n)
        np.testing.assert_allclose(betas, ref.BETAS[schedule](n).numpy(), rtol=1e-12, atol=0)
    # linear: DiT / guided-diffusion's 1e-4 .. 0.02 over 1000 steps; scaled by 1000/N elsewhere.
    assert diffusion.linear_betas(n)[0] == 1e-4 and diffusion.linear_betas(n)[-1] == 0.02
    assert math.isclose(diffusion.linear_betas(250)[0], 4e-4) and math.isclose(diffusion.linear_betas(250)[-1], 0.08)
    # cosine: 1 - ᾱ(1/N)/ᾱ(0) first; the last would be 1 and is clipped at 0.999.
    f = lambda tau: math.cos((tau + 0.008) / 1.008 * math.pi / 2) ** 2
    assert math.isclose(diffusion.cosine_betas(n)[0], 1 - f(1 / n) / f(0), rel_tol=1e-12)
    assert diffusion.cosine_betas(n)[-1] == 0.999
    # sigmoid (Oasis): ᾱ(τ) ∝ σ(3) - σ(6τ - 3); the last ᾱ is 0, its beta clipped at 0.999.
    sig = lambda z: 1 / (1 + math.exp(-z))
    g = lambda tau: (sig(3) - sig(6 * tau - 3)) / (sig(3) - sig(-3))
    assert math.isclose(diffusion.sigmoid_betas(n)[0], 1 - g(1 / n) / g(0), rel_tol=1e-9)
    assert diffusion.sigmoid_betas(n)[-1] == 0.999
    for abar in (linear, cosine, sigmoid):
        assert abar.shape == (n,) and 0 < abar[-1] < abar[0] < 1 and np.all(np.diff(abar) < 0)
    # Oasis keeps ᾱ as a float32 cumprod of float32 betas; ours is float64 (guided-diffusion's).
    oasis = torch.cumprod(1.0 - ref.sigmoid_betas(n).float(), dim=0).numpy()
    assert np.abs(oasis - sigmoid).max() < 2e-6


@pytest.mark.parametrize("steps", [1, 3, 7, 10, 100, 1000])
def test_ddpm_timesteps_are_oasis_spacing(steps):
    expected = ref.kept_timesteps(1000, steps).numpy()[::-1]
    np.testing.assert_array_equal(diffusion.ddpm_timesteps(1000, steps), expected)


# ----------------------------------------------------------------------------- whole loops vs torch


@pytest.mark.parametrize("method,steps", [("euler", 1), ("euler", 6), ("heun", 5)])
def test_flow_samplers_match_torch(method, steps):
    got = diffusion.sample(toy_velocity(jnp), jnp.asarray(_noise()), SamplerConfig(steps=steps, method=method))
    expected = ref.flow_loop(toy_velocity(torch), _nchw(_noise()), steps, heun=method == "heun")
    _close(got, _nhwc(expected))


def _against_torch(got, reference, tol=ATOL):
    """reference(dtype) runs the torch loop in that dtype. The fp32 loop must agree within
    tol + RTOL·|x|, and wm_jax must be no further from the exact (fp64) loop than torch's own
    fp32 loop is (x2, floor 1e-6). Returns (|wm_jax - torch fp32|, |torch fp32 - fp64|)."""
    got = np.asarray(got)
    fp32, fp64 = _nhwc(reference(torch.float32)), _nhwc(reference(torch.float64))
    assert np.abs(fp32).max() > 0.3  # a real sample, not zeros
    np.testing.assert_allclose(got, fp32, atol=tol, rtol=RTOL)
    torch_error = float(np.abs(fp32 - fp64).max())
    assert float(np.abs(got - fp64).max()) <= 2 * torch_error + 1e-6
    return float(np.abs(got - fp32).max()), torch_error


# ε-prediction on the cosine schedule starts at ᾱ_999 ≈ 2.4e-9 (its last beta clipped at 0.999):
# x̂_0 = (x - √(1-ᾱ)·ε̂)/√ᾱ amplifies fp32 rounding 2e4 times, and both fp32 loops land 1e-4 to
# 5e-4 from the exact one there. Those cases get COSINE_EPS_TOL; the fp64 check above still holds.
COSINE_EPS_TOL = 1e-3
DDIM_CASES = {
    # objective, steps, eta, tolerance against the torch fp32 loop
    "eps_linear": (Objective("epsilon", "linear"), 10, 0.0, ATOL),
    "eps_sigma_linear_eta1": (Objective("epsilon", "linear", learned_sigma=True), 8, 1.0, ATOL),
    "eps_cosine_eta0.5": (Objective("epsilon", "cosine"), 12, 0.5, COSINE_EPS_TOL),
    "v_cosine_eta0.5": (Objective("v_prediction", "cosine"), 12, 0.5, ATOL),
    "v_sigmoid": (Objective("v_prediction", "sigmoid"), 10, 0.0, ATOL),
    "v_sigmoid_1step": (Objective("v_prediction", "sigmoid"), 1, 0.0, ATOL),
}


def _torch_ddpm_family(loop, objective, steps, rng, **kw):
    abar = torch.from_numpy(np.array(objective.alphas_cumprod()))
    noises = _step_noises(rng, steps)

    def reference(dtype):
        start, injected = _nchw(_noise()).to(dtype), [_nchw(z).to(dtype) for z in noises]
        return loop(toy_ddpm(objective, torch), start, abar, steps, objective.prediction, noises=injected, **kw)

    return reference


@pytest.mark.parametrize("case", list(DDIM_CASES))
def test_ddim_matches_torch(case):
    objective, steps, eta, tol = DDIM_CASES[case]
    rng = jax.random.key(3)
    got = diffusion.sample(toy_ddpm(objective, jnp), jnp.asarray(_noise()), SamplerConfig(steps=steps, method="ddim", eta=eta),
                           objective, rng)
    _against_torch(got, _torch_ddpm_family(ref.ddim_loop, objective, steps, rng, eta=eta), tol)


def test_ddim_on_v_prediction_is_oasis_loop():
    """Oasis' own loop (with its float32 ᾱ, x̂_0 then ε from x̂_0): wm_jax's DDIM within 1e-5."""
    objective = Objective("v_prediction", "sigmoid")
    got = diffusion.sample(toy_ddpm(objective, jnp), jnp.asarray(_noise()), SamplerConfig(steps=10, method="ddim"), objective)
    expected = _nhwc(ref.oasis_ddim_loop(toy_ddpm(objective, torch), _nchw(_noise()), 1000, 10))
    _close(got, expected)


DDPM_CASES = {
    "eps_sigma_linear": (Objective("epsilon", "linear", learned_sigma=True), 25, ATOL),  # DiT's
    "eps_cosine": (Objective("epsilon", "cosine"), 10, COSINE_EPS_TOL),
    "v_sigmoid": (Objective("v_prediction", "sigmoid"), 50, ATOL),
    "eps_linear_2steps": (Objective("epsilon", "linear"), 2, ATOL),
}


@pytest.mark.parametrize("case", list(DDPM_CASES))
def test_ddpm_ancestral_matches_torch(case):
    objective, steps, tol = DDPM_CASES[case]
    rng = jax.random.key(4)
    got = diffusion.sample(toy_ddpm(objective, jnp), jnp.asarray(_noise()), SamplerConfig(steps=steps, method="ddpm"),
                           objective, rng)
    _against_torch(got, _torch_ddpm_family(ref.ddpm_loop, objective, steps, rng, learned_sigma=objective.learned_sigma), tol)


# ----------------------------------------------------------------------------- pieces


def test_guidance_and_readout_keep_a_learned_variance_from_the_conditional_branch():
    sigma = Objective("epsilon", "linear", learned_sigma=True)
    x = jnp.zeros((1, 2, 2, 3))
    out = jnp.arange(1 * 2 * 2 * 7, dtype=jnp.float32).reshape(1, 2, 2, 7)  # C_out 7: one channel too many
    assert diffusion.readout(sigma, out, x, None).shape[-1] == 6
    assert diffusion.readout(Objective("epsilon", "linear"), out, x, None).shape[-1] == 3
    cond, null = jnp.full((1, 2, 2, 6), 2.0), jnp.full((1, 2, 2, 6), 1.0).at[..., 3:].set(-5.0)
    guided = np.asarray(diffusion.guide(sigma, cond, null, 3.0))
    assert np.all(guided[..., :3] == 4.0) and np.all(guided[..., 3:] == 2.0)
    np.testing.assert_array_equal(np.asarray(diffusion.guide(diffusion.RECTIFIED_FLOW, cond, null, 3.0)),
                                  np.asarray(null + 3.0 * (cond - null)))


def test_context_noise_follows_the_objective_path():
    x0, noise = jnp.ones((1, 2, 2, 1)), jnp.full((1, 2, 2, 1), -1.0)
    t = jnp.array([0.2])
    np.testing.assert_array_equal(np.asarray(diffusion.noised(diffusion.RECTIFIED_FLOW, x0, noise, t)),
                                  np.asarray(diffusion.add_noise(x0, noise, t)))
    objective = Objective("v_prediction", "sigmoid")
    a = objective.alphas_cumprod()[200]
    np.testing.assert_allclose(np.asarray(diffusion.noised(objective, x0, noise, t)), math.sqrt(a) - math.sqrt(1 - a), rtol=1e-6)


def test_model_config_records_the_objective_and_old_configs_read_as_flow():
    tiny = configs.get_config("tiny")
    assert tiny.objective == diffusion.RECTIFIED_FLOW
    dit_like = tiny.replace(prediction="epsilon", noise_schedule="linear", out_channels=8)
    assert dit_like.objective == Objective("epsilon", "linear", 1000, learned_sigma=True)
    assert wm_model.config_from_dict(json.loads(json.dumps(wm_model.config_to_dict(dit_like)))) == dit_like
    old = wm_model.config_to_dict(tiny)
    del old["noise_schedule"], old["diffusion_steps"]  # a config.json written before issue 16
    assert wm_model.config_from_dict(old).objective == diffusion.RECTIFIED_FLOW


def test_a_converted_model_without_a_recorded_objective_is_refused(tmp_path):
    from wm_jax import bundle
    from wm_jax import world as wm_world

    fields = wm_model.config_to_dict(configs.get_config("tiny"))
    del fields["noise_schedule"], fields["diffusion_steps"]
    (tmp_path / "config.json").write_text(json.dumps(fields))
    bundle.check_objective_recorded(tmp_path)  # trained here, not converted: rectified flow
    (tmp_path / "conversion.json").write_text(json.dumps({"layout": "oasis"}))
    with pytest.raises(ValueError, match=r"--layout oasis.*cannot be told.*Convert the checkpoint again"):
        wm_world.load_world(tmp_path, autoencoder_spec="pixel_p4")


# ----------------------------------------------------------------------------- errors


def test_a_sampler_that_does_not_fit_the_objective_is_refused_naming_both():
    eps = Objective("epsilon", "linear")
    noise = jnp.zeros(SHAPE)
    with pytest.raises(ValueError, match=r"sampler 'ddim' does not fit .*rectified flow \(velocity prediction\).*'euler' or 'heun'"):
        diffusion.sample(lambda x, t: x, noise, SamplerConfig(method="ddim"))
    with pytest.raises(ValueError, match=r"sampler 'euler' does not fit .*DDPM epsilon prediction, linear betas.*'ddpm' or 'ddim'"):
        diffusion.sample(lambda x, t: x, noise, SamplerConfig(method="euler"), eps)
    with pytest.raises(ValueError, match="eta 0.5 applies to the 'ddim' sampler only, not 'ddpm'"):
        diffusion.sample(lambda x, t: x, noise, SamplerConfig(method="ddpm", eta=0.5), eps)
    with pytest.raises(ValueError, match="at most 1000"):
        diffusion.sample(lambda x, t: x, noise, SamplerConfig(steps=1001), eps)
    with pytest.raises(ValueError, match="pass rng"):
        diffusion.sample(lambda x, t: x, noise, SamplerConfig(method="ddpm", steps=2), eps)
    assert diffusion.sampler_method(eps, SamplerConfig()) == "ddim"  # "auto": the objective's own
    assert diffusion.sampler_method(diffusion.RECTIFIED_FLOW, SamplerConfig()) == "euler"
    oasis_like = configs.get_config("tiny", prediction="v_prediction", noise_schedule="sigmoid")
    with pytest.raises(ValueError, match="sampler 'heun' does not fit the model's objective, DDPM v-prediction"):
        rollout.make_step(oasis_like, SamplerConfig(method="heun"))  # refused before anything compiles


def test_objectives_that_cannot_be_sampled_are_refused():
    with pytest.raises(ValueError, match="needs a beta schedule"):
        Objective("epsilon", "flow")
    with pytest.raises(ValueError, match="needs the flow schedule"):
        Objective("velocity", "cosine")
    with pytest.raises(ValueError, match="learned sigma goes with prediction 'epsilon'"):
        Objective("v_prediction", "sigmoid", learned_sigma=True)
    with pytest.raises(ValueError, match="noise schedule must be one of"):
        Objective("epsilon", "quadratic")
    with pytest.raises(ValueError, match="out_channels 6"):
        configs.get_config("tiny", prediction="epsilon", noise_schedule="linear", out_channels=6)
    with pytest.raises(ValueError, match="DDIM eta must be >= 0"):
        SamplerConfig(eta=-1.0)
    latents = jnp.zeros((1, 2, 4, 4, 2))
    with pytest.raises(ValueError, match="samples but does not train"):
        diffusion.forcing_loss(lambda x, t, a: x, latents, jnp.zeros((1, 2, 3)), jax.random.key(0), diffusion.NoiseConfig(),
                               jnp.zeros((3,)), prediction="epsilon")


# ----------------------------------------------------------------------------- through the model


def test_generate_frame_samples_a_model_with_its_objectives_sampler(monkeypatch):
    """`rollout.generate_frame` on a DiT-like model (ε with learned sigma) is `diffusion.sample`
    over the model's readouts: guided, the null and conditional ε mixed as one batch and the
    conditional variance kept; the ancestral noise from the rng given. The model is a toy
    stand-in for the cached stream pass (the real pass is covered by test_rollout), so nothing
    compiles."""
    config = configs.get_config("tiny", prediction="epsilon", noise_schedule="linear", out_channels=8)
    sampler = SamplerConfig(steps=3, method="ddpm", guidance=2.0)

    abar_all = jnp.asarray(config.objective.alphas_cumprod(), jnp.float32)

    def toy(x, t_B, actions_BK):  # [ε, variance]: ε of data N(0, I), moved by x, t and the keys
        abar = abar_all[jnp.round(t_B * 1000).astype(jnp.int32)][:, None, None, None]
        key = (actions_BK @ jnp.arange(actions_BK.shape[-1], dtype=jnp.float32))[:, None, None, None]
        wobble = jnp.tanh(x + 0.1 * key + t_B[:, None, None, None])
        return jnp.concatenate([jnp.sqrt(1 - abar) * x + 0.1 * jnp.sqrt(abar) * wobble, wobble], axis=-1)

    monkeypatch.setattr(rollout, "_read_cache", lambda config, params, cache: None)
    monkeypatch.setattr(rollout, "_stream", lambda config, params, x, t_B, a, view: (toy(x, t_B, a), None))
    x_T = jnp.asarray(np.random.default_rng(0).standard_normal((2, 8, 8, 4)), jnp.float32)
    action = jnp.zeros((2, config.action_dim)).at[:, 1].set(1.0)
    null = jnp.broadcast_to(jnp.asarray(config.action_space.null()), action.shape)
    rng = jax.random.key(6)
    got = rollout.generate_frame(config, None, None, action, x_T, sampler, rng)

    objective = config.objective
    def model_fn(x, t):
        t_B = jnp.full((2,), t)
        return diffusion.guide(objective, toy(x, t_B, action), toy(x, t_B, null), sampler.guidance)

    expected = diffusion.sample(model_fn, x_T, sampler, objective, rng)
    assert float(jnp.abs(toy(x_T, jnp.ones(2), action) - toy(x_T, jnp.ones(2), null)).max()) > 0.05  # keys matter
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=1e-6, rtol=1e-6)


def test_wm_rollout_refuses_a_sampler_that_does_not_fit_before_generating(demo_world_dir, tmp_path, capsys):
    from wm_jax import cli

    argv = ["rollout", "--checkpoint", str(demo_world_dir), "--out", str(tmp_path / "x.png"), "--keys", "w"]
    assert cli.main(argv + ["--sampler", "ddpm"]) == 2
    assert "sampler 'ddpm' does not fit the model's objective, rectified flow (velocity prediction)" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
