"""Oasis' sampling loop in PyTorch, written from the public description of open-oasis
`generate.py` (its latest, "stabilized generation" form): the independent reference
`tests/test_oasis_sampling.py` compares wm_jax's cached rollout against. No cache here: every
denoising step of every frame re-runs the whole window, as Oasis does.

What the description says, and this loop does:

* ᾱ: a float32 cumulative product of 1 - the float32-cast sigmoid betas over N = 1000 steps.
* Levels: linspace(-1, N - 1, S + 1) cast to integers; DDIM goes from index S down to 1.
* A new frame starts from Gaussian noise clipped to [-noise_abs_max, noise_abs_max] (20).
* Sliding window: at frame i the model sees frames max(0, i + 1 - max_frames) .. i (32 frames in
  Oasis) and their actions; every earlier frame is fed clean, with noise level
  stabilization_level - 1 (14); the new frame at the step's level.
* v-prediction DDIM on the new frame: x̂_0 = √ᾱ·x - √(1-ᾱ)·v, ε̂ = (√(1/ᾱ)·x - x̂_0)/√(1/ᾱ - 1),
  x ← √ᾱ_next·x̂_0 + √(1-ᾱ_next)·ε̂ with ᾱ_next of the next lower level, 1 at the last step.

Oasis runs its model under fp16 autocast; this reference runs in float32 (or float64).
Layout: x [B, T, C, H, W], noise levels [B, T] integers, actions [B, T, A].
"""

from __future__ import annotations

import torch

from torch_reference_samplers import sigmoid_betas


def oasis_rollout(model, prompt, actions, noises, steps, max_frames, n=1000, stabilization_level=15, noise_abs_max=20.0):
    """prompt: [B, P, C, H, W] encoded prompt frames; actions: [B, P + F, A], one per frame
    (the prompt's included); noises: F tensors [B, C, H, W], the starting noise of each new
    frame before the clamp. Returns all P + F frames [B, P + F, C, H, W]."""
    dtype = prompt.dtype
    abar_all = torch.cumprod(1.0 - sigmoid_betas(n).float(), dim=0)
    levels = torch.linspace(-1, n - 1, steps + 1).long()
    frames = prompt.clone()
    b = prompt.shape[0]
    for start_noise in noises:
        frames = torch.cat([frames, start_noise.clamp(-noise_abs_max, noise_abs_max)[:, None]], dim=1)
        last = frames.shape[1] - 1
        first = max(0, last + 1 - max_frames)
        for k in range(steps, 0, -1):
            window = frames[:, first:]
            noise_level = torch.full((b, window.shape[1]), stabilization_level - 1, dtype=torch.long)
            noise_level[:, -1] = int(levels[k])
            with torch.no_grad():
                v = model(window, noise_level, actions[:, first : last + 1])[:, -1]
            abar = abar_all[int(levels[k])].to(dtype)
            x = frames[:, -1]
            x0 = abar.sqrt() * x - (1 - abar).sqrt() * v
            eps = ((1 / abar).sqrt() * x - x0) / (1 / abar - 1).sqrt()
            abar_next = torch.ones((), dtype=dtype) if k == 1 else abar_all[int(levels[k - 1])].to(dtype)
            frames[:, -1] = abar_next.sqrt() * x0 + (1 - abar_next).sqrt() * eps
    return frames
