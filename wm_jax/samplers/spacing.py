"""Where samplers step: the flow levels, and the training steps a DDPM-family sampler visits."""

from __future__ import annotations

import numpy as np

# Which training steps a DDPM-family sampler visits (`ddpm_timesteps`; `SamplerConfig.spacing`).
SPACINGS = ("oasis", "dit")


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
