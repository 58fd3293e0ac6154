"""The samplers: one module per sampler, by name; `diffusion.sample` dispatches through here.

Every sampler module exposes the same interface:

  NAME                  its name here: `SamplerConfig.method`, the CLI's `--sampler` value
  FAMILY                the objectives it fits, a key of `FAMILIES`: "flow" (rectified flow) or
                        "ddpm" (DDPM ε / v-prediction on a beta schedule); the family's module
                        runs the denoising loop and calls `step` once per step
  step(...)             one denoising step, in its family's signature (flow_family.run,
                        ddpm_family.Step)
  stochastic(config)    whether it draws noise after the start (then sampling needs an rng); the
                        family loop draws it, normal(fold_in(rng, k)) at step k, and passes it as z
  OPTIONS               the `SamplerConfig` fields only it reads (ddim: ("eta",)); a config that
                        moves one of them off its default for another sampler is refused

Modules are named by import path and imported on use: listing the names (the CLI's flag
choices, `choices()`) imports no jax.
"""

from __future__ import annotations

import dataclasses
import importlib

# The objective's own sampler (its family's DEFAULT), so a bundle or a bare model directory
# samples each model the way it was trained without naming one.
AUTO = "auto"

# Adding a sampler: one module in this folder, one line here.
SAMPLERS: dict[str, str] = {
    "euler": "wm_jax.samplers.euler",  # flow, first order: the project's own
    "heun": "wm_jax.samplers.heun",  # flow, second order: two model passes a step
    "ddpm": "wm_jax.samplers.ddpm_ancestral",  # DDPM family: ancestral steps (DiT's sample.py)
    "ddim": "wm_jax.samplers.ddim",  # DDPM family: DDIM with eta (Oasis' own)
}
# The objective families: the loop their samplers' steps run in, their default sampler.
FAMILIES: dict[str, str] = {
    "flow": "wm_jax.samplers.flow_family",
    "ddpm": "wm_jax.samplers.ddpm_family",
}


def choices() -> tuple[str, ...]:
    """Every name `SamplerConfig.method` (and the CLI's --sampler) takes: "auto", then the registry's."""
    return (AUTO,) + tuple(SAMPLERS)


def get(name: str):
    """The sampler module called `name`; an unknown name is refused, listing the known ones."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; known samplers: {', '.join(SAMPLERS)}")
    return importlib.import_module(SAMPLERS[name])


def family(objective):
    """The family module of an `diffusion.Objective`: flow for rectified flow, else the DDPM family."""
    return importlib.import_module(FAMILIES["flow" if objective.is_flow else "ddpm"])


def fitting(family_name: str) -> tuple[str, ...]:
    """The registered samplers of one family, in registry order."""
    return tuple(name for name in SAMPLERS if get(name).FAMILY == family_name)


def resolve(objective, config):
    """The sampler module `config.method` names for this objective ("auto": the family's DEFAULT).
    Refuses a sampler of another family, an option set for another sampler, and what the family
    itself cannot do (ddpm: more steps than the training steps), each naming the objective."""
    home = family(objective)
    name = home.DEFAULT if config.method == AUTO else config.method
    sampler = get(name)
    if sampler.FAMILY != home.NAME:
        raise ValueError(f"sampler {name!r} does not fit the model's objective, {objective.describe()}: it is sampled "
                         f"with {' or '.join(map(repr, fitting(home.NAME)))} (or {AUTO!r}: {home.DEFAULT!r})")
    _refuse_stray_options(sampler, config, objective)
    home.check(objective, config)
    return sampler


def _refuse_stray_options(sampler, config, objective) -> None:
    """An option another sampler reads, set away from its default while `sampler` ignores it."""
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    owners: dict[str, list[str]] = {}
    for name in SAMPLERS:
        for option in get(name).OPTIONS:
            owners.setdefault(option, []).append(name)
    for option, names in owners.items():
        value = getattr(config, option)
        if option not in sampler.OPTIONS and value != defaults[option]:
            raise ValueError(f"{option} {value} applies to the {' or '.join(map(repr, names))} sampler only, not "
                             f"{sampler.NAME!r} (the model's objective: {objective.describe()})")


def is_stochastic(objective, config) -> bool:
    """Whether sampling draws noise after the start (then `run` needs an rng)."""
    return bool(resolve(objective, config).stochastic(config))


def run(model_fn, noise, config, objective, rng=None):
    """Denoise `noise` with the sampler `config` names, in its family's loop (`diffusion.sample`)."""
    sampler = resolve(objective, config)
    if sampler.stochastic(config) and rng is None:
        options = ", ".join(f"{option} {getattr(config, option)}" for option in sampler.OPTIONS)
        raise ValueError(f"the {sampler.NAME!r} sampler{f' ({options})' if options else ''} draws noise at every "
                         "step: pass rng")
    return family(objective).run(sampler, model_fn, noise, config, objective, rng)
