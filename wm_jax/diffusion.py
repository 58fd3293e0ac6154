"""Objectives and samplers: the noise path a model was trained on, the training loss, the samplers.

The project's own models use rectified flow with diffusion forcing: x_t = (1 - t)·x_0 + t·ε
with t in [0, 1] (t = 1 is pure noise), one t per frame. The sampler integrates the velocity
v = ε - x_0: an Euler step from t to s is x_s = x_t + (s - t)·v. A model predicts either v
directly or x_0 (`PREDICTIONS`, read from `ModelConfig.prediction`), whose velocity is
v = (x_t - x_0)/t; the loss is the same velocity loss for both, written for x_0 as
|x̂_0 - x_0|² / t², with t floored at `NoiseConfig.x0_min_level` so nearly clean frames do not dominate.

Imported models keep the objective they were trained with (`Objective`, recorded in their
`ModelConfig`): DDPM ε-prediction (DiT, with or without a learned variance) or v-prediction
(Oasis) over a beta schedule of N discrete steps, x_i = √ᾱ_i·x_0 + √(1-ᾱ_i)·ε. `sample` reads
the objective and dispatches to the sampler `SamplerConfig.method` names in the registry
(`wm_jax.samplers`: Euler/Heun for flow, DDPM ancestral and DDIM (eta) for the DDPM family),
which refuses one that does not fit the objective.

Letters: B batch, T frames, H W C latent height, width, channels, K action entries.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from wm_jax import samplers
# Where samplers step, kept importable from here: `diffusion.ddpm_timesteps` predates the registry.
from wm_jax.samplers.spacing import SPACINGS, ddpm_timesteps, timesteps  # noqa: F401


# What a model's head predicts. Flow: the velocity, or x_0 as the previous frame plus a change.
# DDPM family (imported models only; names as diffusers spells them): ε, or v = √ᾱ·ε - √(1-ᾱ)·x_0.
FLOW_PREDICTIONS = ("velocity", "x0_residual")
DDPM_PREDICTIONS = ("epsilon", "v_prediction")
PREDICTIONS = FLOW_PREDICTIONS + DDPM_PREDICTIONS
# The noise path: "flow" (rectified flow), or the beta schedule of a DDPM-family objective.
SCHEDULES = ("flow", "linear", "cosine", "sigmoid")
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
    """The sampler a model gets when none is named (its family's DEFAULT in `wm_jax.samplers`):
    Euler for flow (the project's), DDIM for the DDPM family (Oasis' own)."""
    return samplers.family(objective).DEFAULT


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
    # False: in those clips one frame, at a position drawn in [1, T-1], is the training target and
    # the others are context only (GameNGen trains the next frame alone; frames after it do not
    # reach it through causal attention). With an x0 head's 1/t² weight, near-clean context frames
    # otherwise carry almost all of the loss, and the frame generation starts from pure noise
    # almost none.
    context_loss: bool = True
    # An x0 head's error is weighted by 1/max(t, x0_min_level)²: the default (X0_MIN_LEVEL) keeps
    # nearly clean frames from dominating; 1.0 weighs every level alike, so the frames sampled
    # from pure noise, whose error is largest, carry the most of the loss.
    x0_min_level: float = X0_MIN_LEVEL
    # Share of frames whose action is replaced by the null action, for guidance.
    action_dropout: float = 0.1

    def __post_init__(self):
        if not 0.0 < self.x0_min_level <= 1.0:
            raise ValueError(f"NoiseConfig.x0_min_level must be in (0, 1], got {self.x0_min_level}")


@dataclasses.dataclass(frozen=True)
class SamplerConfig:
    steps: int = 4
    # A name in the sampler registry (`wm_jax.samplers.choices()`): "euler" | "heun" for flow,
    # "ddpm" (ancestral) | "ddim" for the DDPM family, or "auto", the model's objective's own
    # (`default_method`); a misfit is refused when sampling.
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
    # The standard deviation of a new frame's starting noise (Glow's sampling temperature; 1: the
    # noise the model was trained on). Below 1 a sample keeps nearer the model's likeliest frame:
    # a small painter's one-step sample at 1 paints confetti that 0.8 calms (BUILD_NOTES session 17).
    temperature: float = 1.0
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
    # Latent pixels beyond each edge of the view that the rollout remembers (`wm_jax.memory`): what a
    # move carried out of view comes back as it was, not painted again. 0: nothing remembered.
    memory: int = 0
    # True: the remembered columns close into a circle of the view's width plus 2 x memory latent
    # pixels, so a turn all the way round shows what it started from (a first-person view turning
    # on the spot; doom's memory is sized to the game's turn, BUILD_NOTES session 23).
    memory_wraps: bool = False

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"sampler steps must be >= 1, got {self.steps}")
        if type(self.memory) is not int or self.memory < 0:
            raise ValueError(f"sampler memory is a number of latent pixels >= 0, got {self.memory!r}")
        if self.memory_wraps and not self.memory:
            raise ValueError("sampler memory_wraps closes the remembered columns into a circle: it needs memory > 0")
        if self.method not in samplers.choices():  # the registry now: a sampler registered later counts
            raise ValueError(f"sampler method must be one of {samplers.choices()}, got {self.method!r}")
        if self.eta < 0:
            raise ValueError(f"DDIM eta must be >= 0, got {self.eta}")
        if not 0.0 <= self.guidance_min_level <= 1.0:
            raise ValueError(f"guidance_min_level must be in [0, 1], got {self.guidance_min_level}")
        if not 0.0 <= self.context_noise < 1.0:
            raise ValueError(f"context_noise must be in [0, 1), got {self.context_noise}")
        if self.noise_clamp < 0:
            raise ValueError(f"noise_clamp must be >= 0 (0: no clamp), got {self.noise_clamp}")
        if not 0.0 < self.temperature <= 2.0:
            raise ValueError(f"sampling temperature must be in (0, 2], got {self.temperature}")
        if self.spacing not in SPACINGS:
            raise ValueError(f"timestep spacing must be one of {SPACINGS}, got {self.spacing!r}")

    def overridden(self, **overrides) -> "SamplerConfig":
        """This sampler with the fields a user set (None: keep this one's). Memory 0 also turns
        `memory_wraps` off: with nothing remembered there is no circle to close."""
        fields = {k: v for k, v in overrides.items() if v is not None}
        if fields.get("memory") == 0:
            fields["memory_wraps"] = False
        return dataclasses.replace(self, **fields)


# Oasis' own recipe (open-oasis generate.py, its latest "stabilized generation"; facts only):
# DDIM over 10 steps at the spacing linspace(-1, 999, S + 1) cast to integers; the new frame's
# starting noise clipped to [-20, 20] (noise_abs_max); every context frame fed clean with noise
# level stabilization_level - 1 = 14 (of 1000); a 32-frame sliding window (its max_frames, the
# converted model's window + 1). `wm convert --layout oasis` records it as the model's sampler.
OASIS_SAMPLER = SamplerConfig(steps=10, method="ddim", context_noise=0.014, context_noised=False, noise_clamp=20.0)


def starting_noise(rng, shape, sampler: SamplerConfig):
    """The noise a new frame's sampling starts from: N(0, temperature²), clamped as the sampler says."""
    return clamp_noise(sampler.temperature * jax.random.normal(rng, shape), sampler.noise_clamp)


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
    return noise_levels_and_context(rng, batch, frames, config)[0]


def noise_levels_and_context(rng, batch: int, frames: int, config: NoiseConfig):
    """`sample_noise_levels`, and [B, T] True where a frame is an inference-case clip's context
    (with `context_loss` off: every frame of such a clip but its target)."""
    rng_level, rng_case, rng_context = jax.random.split(rng, 3)
    normal = jax.random.normal(rng_level, (batch, frames))
    t_BT = jax.nn.sigmoid(config.logit_normal_mean + config.logit_normal_std * normal)
    if config.uniform_share > 0:  # a static float: the default draws exactly what it drew before
        rng_uniform, rng_which = jax.random.split(jax.random.fold_in(rng_level, 1))
        uniform_BT = jax.random.uniform(rng_uniform, (batch, frames))
        t_BT = jnp.where(jax.random.bernoulli(rng_which, config.uniform_share, (batch, frames)), uniform_BT, t_BT)
    context_BT = jax.random.uniform(rng_context, (batch, frames), maxval=config.context_noise_max)
    is_inference_case_B = jax.random.bernoulli(rng_case, config.context_share, (batch,))
    target_B = jnp.full((batch,), frames - 1)
    if not config.context_loss and frames > 1:
        # The one frame trained sees 1 to T-1 frames of context, as generation's first frames do.
        target_B = jax.random.randint(jax.random.fold_in(rng_case, 1), (batch,), 1, frames)
    is_context_BT = is_inference_case_B[:, None] & (jnp.arange(frames)[None] != target_B[:, None])
    return jnp.where(is_context_BT, context_BT, t_BT), is_context_BT


def drop_actions(rng, actions_BTK, null_K, rate: float):
    keep_BT = jax.random.bernoulli(rng, 1.0 - rate, actions_BTK.shape[:2])
    return jnp.where(keep_BT[..., None], actions_BTK, jnp.asarray(null_K, actions_BTK.dtype))


def forcing_loss(predict: Callable, latents_BTHWC, actions_BTK, rng, config: NoiseConfig, null_K, mask_BT=None,
                 prediction: str = "velocity"):
    """Diffusion-forcing loss; returns (scalar loss, per-frame loss [B, T]).

    predict(x_t, t, actions, clean) -> model output [B, T, H, W, C_out]; the first C channels are
    the velocity or x_0 (`prediction`) (C_out = 2C when a model also predicts sigma, which this
    loss does not train). `clean` is the clean latents: an x0_residual model adds its change to
    the clean frame before, which is what generation adds it to (the input's frame before is
    noised like every context frame), where a velocity model ignores it.
    mask_BT: 1 for real frames, 0 for padding.
    """
    if prediction not in FLOW_PREDICTIONS:  # the else branch below would train it as x_0, silently
        raise ValueError(f"forcing_loss trains rectified flow {FLOW_PREDICTIONS}; prediction {prediction!r} is an "
                         "imported model's objective, which wm_jax samples but does not train")
    b, t = latents_BTHWC.shape[:2]
    rng_t, rng_noise, rng_drop = jax.random.split(rng, 3)
    t_BT, is_context_BT = noise_levels_and_context(rng_t, b, t, config)
    noise = jax.random.normal(rng_noise, latents_BTHWC.shape, latents_BTHWC.dtype)
    x_t = add_noise(latents_BTHWC, noise, t_BT)
    actions_BTK = drop_actions(rng_drop, actions_BTK, null_K, config.action_dropout)
    channels = latents_BTHWC.shape[-1]
    mask_BT = jnp.ones((b, t)) if mask_BT is None else mask_BT
    if not config.context_loss:
        mask_BT = mask_BT * ~is_context_BT
    output = predict(x_t, t_BT, actions_BTK, latents_BTHWC)[..., :channels]
    if prediction == "velocity":
        per_frame_BT = jnp.mean(jnp.square(output - velocity(latents_BTHWC, noise)), axis=(-3, -2, -1))
    else:
        error_BT = jnp.mean(jnp.square(output - latents_BTHWC), axis=(-3, -2, -1))
        per_frame_BT = error_BT / jnp.square(jnp.maximum(t_BT, config.x0_min_level))
    mask_BT = mask_BT.astype(per_frame_BT.dtype)
    loss = jnp.sum(per_frame_BT * mask_BT) / jnp.maximum(jnp.sum(mask_BT), 1.0)
    return loss, per_frame_BT


def sampler_method(objective: Objective, config: SamplerConfig) -> str:
    """The sampler `config` names for this objective ("auto" resolved); refuses a misfit, an option
    of another sampler (eta off 0 for any but DDIM), and more steps than a DDPM objective has."""
    return samplers.resolve(objective, config).NAME


def is_stochastic(objective: Objective, config: SamplerConfig) -> bool:
    """Whether sampling draws noise after the start (then `sample` needs an rng)."""
    return samplers.is_stochastic(objective, config)


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


def sample(model_fn: Callable, noise, config: SamplerConfig, objective: Objective = RECTIFIED_FLOW, rng=None):
    """Denoise `noise` the way the objective was trained, with the registered sampler `config`
    names (`wm_jax.samplers`). model_fn(x, t) -> `readout(objective, model output, x, t)` at level
    t (a Python float; a velocity for flow). rng: the noise the stochastic samplers draw after the
    start (`is_stochastic`), jax.random.normal(fold_in(rng, k)) at step k.

    The samplers loop in Python over the few steps: it unrolls at trace time, so XLA sees one
    fused graph.
    """
    return samplers.run(model_fn, noise, config, objective, rng)
