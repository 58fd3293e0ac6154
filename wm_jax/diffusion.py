"""Objectives and samplers: the noise path a model was trained on, the training loss, the samplers.

The project's own models use rectified flow with diffusion forcing: x_t = (1 - t)·x_0 + t·ε
with t in [0, 1] (t = 1 is pure noise), one t per frame. The sampler integrates the velocity
v = ε - x_0: an Euler step from t to s is x_s = x_t + (s - t)·v. A model predicts either v
directly or x_0 (`PREDICTIONS`, read from `ModelConfig.prediction`), whose velocity is
v = (x_t - x_0)/t; the loss is the same velocity loss for both, written for x_0 as
|x̂_0 - x_0|² / t², with t floored at `X0_MIN_LEVEL` so nearly clean frames do not dominate.

Imported models keep the objective they were trained with (`Objective`, recorded in their
`ModelConfig`): DDPM ε-prediction (DiT, with or without a learned variance) or v-prediction
(Oasis) over a beta schedule of N discrete steps, x_i = √ᾱ_i·x_0 + √(1-ᾱ_i)·ε. `sample` reads
the objective and refuses a sampler that does not fit it: Euler/Heun for flow, DDPM ancestral
and DDIM (eta) for the DDPM family.

Letters: B batch, T frames, H W C latent height, width, channels, K action entries.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np


# What a model's head predicts. Flow: the velocity, or x_0 as the previous frame plus a change.
# DDPM family (imported models only; names as diffusers spells them): ε, or v = √ᾱ·ε - √(1-ᾱ)·x_0.
FLOW_PREDICTIONS = ("velocity", "x0_residual")
DDPM_PREDICTIONS = ("epsilon", "v_prediction")
PREDICTIONS = FLOW_PREDICTIONS + DDPM_PREDICTIONS
# The noise path: "flow" (rectified flow), or the beta schedule of a DDPM-family objective.
SCHEDULES = ("flow", "linear", "cosine", "sigmoid")
FLOW_METHODS = ("euler", "heun")
DDPM_METHODS = ("ddpm", "ddim")
# "auto": the objective's own default (`default_method`), so a bundle or a bare model directory
# samples each model the way it was trained without naming a method.
METHODS = ("auto",) + FLOW_METHODS + DDPM_METHODS
# Which training steps a DDPM-family sampler visits (`ddpm_timesteps`).
SPACINGS = ("oasis", "dit")
# Below this level an x_0 error is weighted as at this level. The velocity loss weights it by
# 1/t², 400x at t = 0.05 (JiT's floor): the nearly clean context frames diffusion forcing trains
# on then outweigh the noisy frames that sampling reads (t >= 0.5 at 2 steps) by two orders of
# magnitude, and the first proxy run spent its updates copying clean inputs through.
X0_MIN_LEVEL = 0.25


def to_velocity(output, x_t, t, prediction: str):
    """The model's output (its first C channels) as a velocity; t: [...] broadcast over H, W, C."""
    if prediction == "velocity":
        return output
    return (x_t - output) / jnp.asarray(t, output.dtype)[..., None, None, None]


# ----------------------------------------------------------------------------- objectives


def linear_betas(n: int) -> np.ndarray:
    """[n] betas, guided-diffusion's (DiT's) linear schedule: 1e-4 .. 0.02 at n = 1000, both ends
    scaled by 1000/n so other step counts keep the same total noise."""
    scale = 1000.0 / n
    return np.linspace(scale * 1e-4, scale * 0.02, n, dtype=np.float64)


def cosine_betas(n: int, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """[n] betas of improved DDPM's cosine schedule: ᾱ(τ) = cos²((τ + s)/(1 + s)·π/2) for τ in
    [0, 1], β_i = 1 - ᾱ((i+1)/n)/ᾱ(i/n), clipped at max_beta (the last step would be 1)."""
    alpha_bar = lambda tau: np.cos((tau + s) / (1.0 + s) * np.pi / 2) ** 2
    tau = np.arange(n + 1, dtype=np.float64) / n
    return np.minimum(1.0 - alpha_bar(tau[1:]) / alpha_bar(tau[:-1]), max_beta)


def sigmoid_betas(n: int, start: float = -3.0, end: float = 3.0, tau: float = 1.0) -> np.ndarray:
    """[n] betas of the sigmoid schedule as Oasis defines it (its utils.sigmoid_beta_schedule,
    after Jabri et al. 2022): ᾱ(τ) ∝ σ(end/tau) - σ((τ·(end - start) + start)/tau) on τ = i/n,
    normalised to ᾱ(0) = 1; β_i = 1 - ᾱ_{i+1}/ᾱ_i clipped to [0, 0.999] (ᾱ(1) = 0)."""
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))
    grid = np.linspace(0.0, n, n + 1, dtype=np.float64) / n
    alpha_bar = (sig(end / tau) - sig((grid * (end - start) + start) / tau)) / (sig(end / tau) - sig(start / tau))
    alpha_bar = alpha_bar / alpha_bar[0]
    return np.clip(1.0 - alpha_bar[1:] / alpha_bar[:-1], 0.0, 0.999)


BETA_SCHEDULES = {"linear": linear_betas, "cosine": cosine_betas, "sigmoid": sigmoid_betas}


@functools.lru_cache(maxsize=16)
def alphas_cumprod(schedule: str, n: int) -> np.ndarray:
    """[n] ᾱ_i = Π_{j<=i} (1 - β_j), float64 (as guided-diffusion keeps them; read-only)."""
    out = np.cumprod(1.0 - BETA_SCHEDULES[schedule](n))
    out.setflags(write=False)
    return out


@dataclasses.dataclass(frozen=True)
class Objective:
    """What a model was trained to predict, on which noise path; every sampler reads it.

    flow (schedule "flow"): x_t = (1-t)·x_0 + t·ε; prediction "velocity" or "x0_residual" (read
      as a velocity by `to_velocity`).
    DDPM family (schedule "linear" | "cosine" | "sigmoid" over `diffusion_steps` = N discrete
      steps i = 0..N-1): x_i = √ᾱ_i·x_0 + √(1-ᾱ_i)·ε; the model sees level t = i/N (its timestep
      embedding 1000·t = i for N = 1000, the integer step DiT and Oasis feed). prediction
      "epsilon" (ε; `learned_sigma`: the next C output channels are guided-diffusion's learned
      log-variance interpolation in [-1, 1]) or "v_prediction" (v = √ᾱ·ε - √(1-ᾱ)·x_0).
    """

    prediction: str = "velocity"
    schedule: str = "flow"
    diffusion_steps: int = 1000
    learned_sigma: bool = False

    def __post_init__(self):
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {self.prediction!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"noise schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if (self.prediction in FLOW_PREDICTIONS) != (self.schedule == "flow"):
            family = "the flow schedule" if self.prediction in FLOW_PREDICTIONS else f"a beta schedule {SCHEDULES[1:]}"
            raise ValueError(f"prediction {self.prediction!r} needs {family}, got noise schedule {self.schedule!r}")
        if self.diffusion_steps < 1:
            raise ValueError(f"diffusion_steps must be >= 1, got {self.diffusion_steps}")
        if self.learned_sigma and self.prediction != "epsilon":
            raise ValueError(f"a learned sigma goes with prediction 'epsilon' (DiT's), not {self.prediction!r}")

    @property
    def is_flow(self) -> bool:
        return self.schedule == "flow"

    def alphas_cumprod(self) -> np.ndarray:
        if self.is_flow:
            raise ValueError(f"{self.describe()} has no beta schedule")
        return alphas_cumprod(self.schedule, self.diffusion_steps)

    def describe(self) -> str:
        if self.is_flow:
            return f"rectified flow ({self.prediction} prediction)"
        sigma = " with learned sigma" if self.learned_sigma else ""
        kind = {"epsilon": "epsilon prediction", "v_prediction": "v-prediction"}[self.prediction]
        return f"DDPM {kind}{sigma}, {self.schedule} betas over {self.diffusion_steps} steps"


RECTIFIED_FLOW = Objective()


def default_method(objective: Objective) -> str:
    """The sampler a model gets when none is named: Euler for flow (the project's), DDIM for the
    DDPM family (Oasis' own; deterministic at eta 0, and good at the few steps a frame affords)."""
    return "euler" if objective.is_flow else "ddim"


@dataclasses.dataclass(frozen=True)
class NoiseConfig:
    """How training draws noise levels; defaults follow the diffusion-forcing recipe."""

    logit_normal_mean: float = 0.0
    logit_normal_std: float = 1.0
    # Share of frames whose level is uniform in [0, 1] instead: logit-normal levels almost never
    # come near t = 1, where sampling starts and the context alone must say what comes next.
    uniform_share: float = 0.0
    # Share of clips whose earlier frames are clean or lightly noised and only the last frame is
    # noisy at an independent level: exactly what generation meets.
    context_share: float = 0.25
    context_noise_max: float = 0.1
    # Share of frames whose action is replaced by the null action, for guidance.
    action_dropout: float = 0.1


@dataclasses.dataclass(frozen=True)
class SamplerConfig:
    steps: int = 4
    # `METHODS`: "euler" | "heun" for flow, "ddpm" (ancestral) | "ddim" for the DDPM family, or
    # "auto", the model's objective's own (`default_method`); a misfit is refused when sampling.
    method: str = "auto"
    # DDIM only: 0 is deterministic DDIM, 1 draws the DDPM posterior's variance at each step.
    eta: float = 0.0
    # Noise level at which a finished frame's keys and values are written into the cache.
    context_noise: float = 0.0
    # Action guidance: 1.0 is plain conditional sampling; >1 extrapolates away from the null action.
    guidance: float = 1.0
    # Guidance only at denoising steps that start at a noise level >= this (0: every step). The
    # keys decide the coarse picture at high noise; extrapolating at low noise too sharpens and
    # saturates, and frame after frame that compounds (issue 15).
    guidance_min_level: float = 0.0
    # Draws of the starting noise (and of context noise) are clipped to [-noise_clamp, noise_clamp];
    # 0: not clipped. Oasis clips at 20 (`OASIS_SAMPLER`).
    noise_clamp: float = 0.0
    # False: a finished frame is written into the cache clean, the model told it is at level
    # context_noise (Oasis' "stabilization": clean context labelled at level 14 of 1000). True:
    # noised to that level on the objective's path first.
    context_noised: bool = True
    # True: each frame rebuilds the cache from the last `window` finished frames, so every context
    # frame's keys see only frames inside the window, as Oasis' sliding-window loop recomputes
    # them; exact past the window, at window - 1 extra frame passes per frame. False: each frame
    # is written once and keeps the keys it had when it was made (the same until the window is
    # full; BUILD_NOTES "Oasis through the cache").
    rebuild_context: bool = False
    # DDPM family: which training steps S steps visit (`ddpm_timesteps`): "oasis" (floor(k·N/S) - 1,
    # from pure noise) or "dit" (guided-diffusion's respacing, round(i·(N-1)/(S-1)), DiT's sampler).
    spacing: str = "oasis"

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"sampler steps must be >= 1, got {self.steps}")
        if self.method not in METHODS:
            raise ValueError(f"sampler method must be one of {METHODS}, got {self.method!r}")
        if self.eta < 0:
            raise ValueError(f"DDIM eta must be >= 0, got {self.eta}")
        if not 0.0 <= self.guidance_min_level <= 1.0:
            raise ValueError(f"guidance_min_level must be in [0, 1], got {self.guidance_min_level}")
        if not 0.0 <= self.context_noise < 1.0:
            raise ValueError(f"context_noise must be in [0, 1), got {self.context_noise}")
        if self.noise_clamp < 0:
            raise ValueError(f"noise_clamp must be >= 0 (0: no clamp), got {self.noise_clamp}")
        if self.spacing not in SPACINGS:
            raise ValueError(f"timestep spacing must be one of {SPACINGS}, got {self.spacing!r}")


# Oasis' own recipe (open-oasis generate.py, its latest "stabilized generation"; facts only):
# DDIM over 10 steps at the spacing linspace(-1, 999, S + 1) cast to integers; the new frame's
# starting noise clipped to [-20, 20] (noise_abs_max); every context frame fed clean with noise
# level stabilization_level - 1 = 14 (of 1000); a 32-frame sliding window (its max_frames, the
# converted model's window + 1). `wm convert --layout oasis` records it as the model's sampler.
OASIS_SAMPLER = SamplerConfig(steps=10, method="ddim", context_noise=0.014, context_noised=False, noise_clamp=20.0)


def clamp_noise(noise, clamp: float):
    """Noise clipped to [-clamp, clamp] (clamp 0: unchanged; a static float)."""
    return jnp.clip(noise, -clamp, clamp) if clamp else noise


def add_noise(x0, noise, t):
    """x0, noise: [..., H, W, C]; t: [...] -> x_t."""
    t = t[..., None, None, None]
    return (1.0 - t) * x0 + t * noise


def velocity(x0, noise):
    return noise - x0


def sample_noise_levels(rng, batch: int, frames: int, config: NoiseConfig) -> jnp.ndarray:
    """[B, T] noise levels: independent logit-normal (or uniform) per frame, some clips in the
    inference case."""
    rng_level, rng_case, rng_context = jax.random.split(rng, 3)
    normal = jax.random.normal(rng_level, (batch, frames))
    t_BT = jax.nn.sigmoid(config.logit_normal_mean + config.logit_normal_std * normal)
    if config.uniform_share > 0:  # a static float: the default draws exactly what it drew before
        rng_uniform, rng_which = jax.random.split(jax.random.fold_in(rng_level, 1))
        uniform_BT = jax.random.uniform(rng_uniform, (batch, frames))
        t_BT = jnp.where(jax.random.bernoulli(rng_which, config.uniform_share, (batch, frames)), uniform_BT, t_BT)
    context_BT = jax.random.uniform(rng_context, (batch, frames), maxval=config.context_noise_max)
    is_inference_case_B = jax.random.bernoulli(rng_case, config.context_share, (batch,))
    earlier_T = jnp.arange(frames) < frames - 1
    return jnp.where(is_inference_case_B[:, None] & earlier_T[None], context_BT, t_BT)


def drop_actions(rng, actions_BTK, null_K, rate: float):
    keep_BT = jax.random.bernoulli(rng, 1.0 - rate, actions_BTK.shape[:2])
    return jnp.where(keep_BT[..., None], actions_BTK, jnp.asarray(null_K, actions_BTK.dtype))


def forcing_loss(predict: Callable, latents_BTHWC, actions_BTK, rng, config: NoiseConfig, null_K, mask_BT=None,
                 prediction: str = "velocity"):
    """Diffusion-forcing loss; returns (scalar loss, per-frame loss [B, T]).

    predict(x_t, t, actions) -> model output [B, T, H, W, C_out]; the first C channels are
    the velocity or x_0 (`prediction`) (C_out = 2C when a model also predicts sigma, which this
    loss does not train).
    mask_BT: 1 for real frames, 0 for padding.
    """
    if prediction not in FLOW_PREDICTIONS:  # the else branch below would train it as x_0, silently
        raise ValueError(f"forcing_loss trains rectified flow {FLOW_PREDICTIONS}; prediction {prediction!r} is an "
                         "imported model's objective, which wm_jax samples but does not train")
    b, t = latents_BTHWC.shape[:2]
    rng_t, rng_noise, rng_drop = jax.random.split(rng, 3)
    t_BT = sample_noise_levels(rng_t, b, t, config)
    noise = jax.random.normal(rng_noise, latents_BTHWC.shape, latents_BTHWC.dtype)
    x_t = add_noise(latents_BTHWC, noise, t_BT)
    actions_BTK = drop_actions(rng_drop, actions_BTK, null_K, config.action_dropout)
    channels = latents_BTHWC.shape[-1]
    mask_BT = jnp.ones((b, t)) if mask_BT is None else mask_BT
    output = predict(x_t, t_BT, actions_BTK)[..., :channels]
    if prediction == "velocity":
        per_frame_BT = jnp.mean(jnp.square(output - velocity(latents_BTHWC, noise)), axis=(-3, -2, -1))
    else:
        error_BT = jnp.mean(jnp.square(output - latents_BTHWC), axis=(-3, -2, -1))
        per_frame_BT = error_BT / jnp.square(jnp.maximum(t_BT, X0_MIN_LEVEL))
    mask_BT = mask_BT.astype(per_frame_BT.dtype)
    loss = jnp.sum(per_frame_BT * mask_BT) / jnp.maximum(jnp.sum(mask_BT), 1.0)
    return loss, per_frame_BT


def timesteps(steps: int) -> np.ndarray:
    """[steps + 1] noise levels from 1 (noise) to 0 (clean)."""
    return np.linspace(1.0, 0.0, steps + 1, dtype=np.float32)


def ddpm_timesteps(diffusion_steps: int, steps: int, spacing: str = "oasis") -> np.ndarray:
    """[steps] training-step indices a DDPM-family sampler visits, descending.

    "oasis": Oasis' spacing, the integer part of linspace(-1, N - 1, steps + 1) without its -1
    (clean); it always starts at the last step (pure noise), which few-step sampling needs;
    computed in integers, as floor(k·N/steps) - 1 for k = steps..1.
    "dit": guided-diffusion's respacing for one section of `steps` (DiT's `create_diffusion(
    str(steps))`): round(i·stride) for i = 0..steps-1, stride (N-1)/(steps-1) added up i times
    (1 for one step), from step 0 to step N - 1.
    """
    if not 1 <= steps <= diffusion_steps:
        raise ValueError(f"a DDPM-family sampler takes 1..{diffusion_steps} steps (the training steps), got {steps}")
    if spacing == "oasis":
        return np.array([k * diffusion_steps // steps - 1 for k in range(steps, 0, -1)], np.int64)
    if spacing != "dit":
        raise ValueError(f"timestep spacing must be one of {SPACINGS}, got {spacing!r}")
    stride = (diffusion_steps - 1) / (steps - 1) if steps > 1 else 1
    taken, position = [], 0.0
    for _ in range(steps):
        taken.append(round(position))
        position += stride
    return np.array(taken[::-1], np.int64)


def sampler_method(objective: Objective, config: SamplerConfig) -> str:
    """The method `config` names for this objective ("auto" resolved); refuses a misfit."""
    method = default_method(objective) if config.method == "auto" else config.method
    fits = FLOW_METHODS if objective.is_flow else DDPM_METHODS
    if method not in fits:
        raise ValueError(f"sampler {method!r} does not fit the model's objective, {objective.describe()}: "
                         f"it is sampled with {' or '.join(map(repr, fits))} (or 'auto': {default_method(objective)!r})")
    if config.eta and method != "ddim":
        raise ValueError(f"eta {config.eta} applies to the 'ddim' sampler only, not {method!r} "
                         f"(the model's objective: {objective.describe()})")
    if not objective.is_flow and config.steps > objective.diffusion_steps:
        raise ValueError(f"{config.steps} sampler steps for {objective.describe()}: at most {objective.diffusion_steps}")
    return method


def is_stochastic(objective: Objective, config: SamplerConfig) -> bool:
    """Whether sampling draws noise after the start (then `sample` needs an rng)."""
    method = sampler_method(objective, config)
    return method == "ddpm" or (method == "ddim" and config.eta > 0)


def readout(objective: Objective, output, x_t, t):
    """A model's output [..., C_out] as the objective's sampler reads it: flow, the velocity
    [..., C]; epsilon, ε [..., C] (and the learned variance in [..., C:2C]); v_prediction, v.
    x_t: [..., H, W, C]; t: [...] (flow only)."""
    channels = x_t.shape[-1]
    if objective.is_flow:
        return to_velocity(output[..., :channels], x_t, t, objective.prediction)
    return output[..., : 2 * channels if objective.learned_sigma else channels]


def guide(objective: Objective, cond, null, scale, channels: int | None = None):
    """Guidance on `readout`s: null + scale·(cond - null) on the prediction channels (the same
    extrapolation in x_0 and ε, both affine in them); a learned variance is the conditional
    branch's, as DiT's guided sampler keeps it. channels: guide only the first `channels`
    prediction channels and keep the conditional branch's others (DiT's sample.py guides 3 of
    its 4 latent channels "for exact reproducibility"); None: all."""
    c = cond.shape[-1] // 2 if objective.learned_sigma else cond.shape[-1]
    g = c if channels is None else min(channels, c)
    if g == cond.shape[-1]:
        return null + scale * (cond - null)
    return jnp.concatenate([null[..., :g] + scale * (cond[..., :g] - null[..., :g]), cond[..., g:]], axis=-1)


def noised(objective: Objective, x0, noise, t):
    """x0, noise: [..., H, W, C]; t: [...] -> x at level t on the objective's path. For the DDPM
    family t is a fraction of the training steps (ᾱ of step round(t·N))."""
    if objective.is_flow:
        return add_noise(x0, noise, t)
    n = objective.diffusion_steps
    index = jnp.clip(jnp.round(jnp.asarray(t) * n).astype(jnp.int32), 0, n - 1)
    abar = jnp.asarray(objective.alphas_cumprod(), jnp.float32)[index][..., None, None, None]
    return jnp.sqrt(abar) * x0 + jnp.sqrt(1.0 - abar) * noise


def predicted_x0_eps(objective: Objective, out, x_t, abar: float):
    """(x̂_0, ε̂) from a DDPM-family readout at a step whose ᾱ is abar."""
    c = x_t.shape[-1]
    pred = out[..., :c]
    a, s = math.sqrt(abar), math.sqrt(1.0 - abar)  # Python floats: weakly typed, x stays fp32
    if objective.prediction == "epsilon":
        return (x_t - s * pred) / a, pred
    return a * x_t - s * pred, s * x_t + a * pred


def ddpm_log_variance(objective: Objective, out, abar: float, abar_prev: float):
    """log σ² of an ancestral step from ᾱ to ᾱ_prev, as guided-diffusion's respaced process sets
    it: β' = 1 - ᾱ/ᾱ_prev; learned sigma interpolates between log β' and the log posterior
    variance β'(1 - ᾱ_prev)/(1 - ᾱ) by (v + 1)/2, v the model's [..., C:2C]; otherwise log β'
    (its "fixed large" variance, DiT's choice without learned sigma)."""
    beta = 1.0 - abar / abar_prev
    if not objective.learned_sigma:
        return math.log(beta)
    c = out.shape[-1] // 2
    frac = (out[..., c:] + 1.0) / 2.0
    return frac * math.log(beta) + (1.0 - frac) * math.log(beta * (1.0 - abar_prev) / (1.0 - abar))


def sample(model_fn: Callable, noise, config: SamplerConfig, objective: Objective = RECTIFIED_FLOW, rng=None):
    """Denoise `noise` the way the objective was trained. model_fn(x, t) -> `readout(objective,
    model output, x, t)` at level t (a Python float; a velocity for flow). rng: the noise the
    stochastic samplers draw after the start (`is_stochastic`), jax.random.normal(fold_in(rng, k))
    at step k.

    A Python loop over the few steps: it unrolls at trace time, so XLA sees one fused graph.
    """
    method = sampler_method(objective, config)
    if objective.is_flow:
        return _integrate_flow(model_fn, noise, config.steps, method)
    return _denoise_ddpm(model_fn, noise, config, objective, method, rng)


def _integrate_flow(velocity_fn: Callable, noise, steps: int, method: str):
    """Integrate from t = 1 to t = 0. velocity_fn(x, t_scalar) -> v with x's shape."""
    levels = timesteps(steps)
    x = noise
    for t, s in zip(levels[:-1], levels[1:]):
        v = velocity_fn(x, t)
        if method == "heun" and s > 0:
            v = 0.5 * (v + velocity_fn(x + (s - t) * v, s))
        x = x + (s - t) * v
    return x


def _denoise_ddpm(model_fn: Callable, noise, config: SamplerConfig, objective: Objective, method: str, rng):
    """DDIM (eta) or DDPM ancestral steps over `ddpm_timesteps`; the last step lands on x̂_0.

    Per step from ᾱ to ᾱ_prev (1 after the last step):
      ddim: σ = eta·√((1-ᾱ_prev)/(1-ᾱ))·√(1-ᾱ/ᾱ_prev); x = √ᾱ_prev·x̂_0 + √(1-ᾱ_prev-σ²)·ε̂ + σ·z
      ddpm: x = β'√ᾱ_prev/(1-ᾱ)·x̂_0 + (1-ᾱ_prev)√(1-β')/(1-ᾱ)·x + exp(½ log σ²)·z (no z last)
    The coefficients are float64 numbers at trace time, constants in the compiled graph.
    """
    stochastic = is_stochastic(objective, config)
    if stochastic and rng is None:
        raise ValueError(f"the {method!r} sampler (eta {config.eta}) draws noise at every step: pass rng")
    n = objective.diffusion_steps
    abar_all = objective.alphas_cumprod()
    indices = ddpm_timesteps(n, config.steps, config.spacing)
    x = noise
    for k, i in enumerate(indices):
        last = k + 1 == len(indices)
        abar, abar_prev = float(abar_all[i]), 1.0 if last else float(abar_all[indices[k + 1]])
        out = model_fn(x, float(i) / n)
        x0, eps = predicted_x0_eps(objective, out, x, abar)
        z = jax.random.normal(jax.random.fold_in(rng, k), x.shape, x.dtype) if stochastic and not last else None
        if method == "ddim":
            sigma = config.eta * math.sqrt((1.0 - abar_prev) / (1.0 - abar) * (1.0 - abar / abar_prev))
            x = math.sqrt(abar_prev) * x0 + math.sqrt(max(1.0 - abar_prev - sigma**2, 0.0)) * eps
            if z is not None:
                x = x + sigma * z
        else:
            beta = 1.0 - abar / abar_prev
            x = beta * math.sqrt(abar_prev) / (1.0 - abar) * x0 + (1.0 - abar_prev) * math.sqrt(1.0 - beta) / (1.0 - abar) * x
            if z is not None:
                x = x + jnp.exp(0.5 * ddpm_log_variance(objective, out, abar, abar_prev)) * z
    return x
