"""Samplers and beta schedules in PyTorch, written from their public descriptions: the
independent references `tests/test_objectives.py` compares `wm_jax.diffusion` against.

* Beta schedules: DDPM's linear one as guided-diffusion (and DiT) define it, 1e-4 .. 0.02 over
  1000 steps, both ends scaled by 1000/N; improved DDPM's cosine (Nichol & Dhariwal 2021),
  ᾱ(τ) = cos²((τ + s)/(1 + s)·π/2), s = 0.008, β clipped at 0.999; the sigmoid schedule as
  open-oasis `utils.sigmoid_beta_schedule` defines it (start -3, end 3, tau 1, ᾱ normalised
  to 1 at τ = 0, β clipped to [0, 0.999]).
* Timesteps: Oasis' spacing, linspace(-1, N - 1, S + 1) cast to integers (torch's long cast
  truncates), the -1 meaning clean; or guided-diffusion's respacing (DiT's), positions 0, s, 2s,
  ... (s = (N-1)/(S-1) added up) rounded.
* DDIM (Song et al. 2021, eq. 12) and DDPM ancestral sampling as guided-diffusion runs them on a
  respaced process: the kept steps' ᾱ, β'_k = 1 - ᾱ_k/ᾱ_{k-1}, posterior mean coefficients and
  variance, the learned-range variance (v + 1)/2 between log β' and the clipped log posterior
  variance, or the "fixed large" one (β'); ε re-derived from x̂_0 for DDIM; no noise at the
  last step. Written as arrays over the respaced process, not step by step as wm_jax does.
* Oasis' DDIM loop for v-prediction (open-oasis generate.py): x_start = √ᾱ·x - √(1-ᾱ)·v,
  x_noise = (√(1/ᾱ)·x - x_start)/√(1/ᾱ - 1), next x = √ᾱ_next·x_start + √(1-ᾱ_next)·x_noise,
  ᾱ_next = 1 at the last step; its ᾱ are a float32 cumprod of the float32-cast betas.
* Euler and Heun on the rectified-flow ODE dx/dt = v from t = 1 to 0 over S equal steps (Heun's
  corrector skipped on the step that ends at t = 0).

Samples are in the starting noise's dtype (float32, or float64 for the exact loop the tests
measure both against); the schedule is float64 except where Oasis casts it. Noise after the start
is injected (`noises[j]` at loop position j), so a loop is a deterministic function.
"""

from __future__ import annotations

import math

import torch


def linear_betas(n):
    scale = 1000 / n
    return torch.linspace(scale * 0.0001, scale * 0.02, n, dtype=torch.float64)


def cosine_betas(n, s=0.008, max_beta=0.999):
    alpha_bar = lambda tau: math.cos((tau + s) / (1 + s) * math.pi / 2) ** 2
    return torch.tensor([min(1 - alpha_bar((i + 1) / n) / alpha_bar(i / n), max_beta) for i in range(n)], dtype=torch.float64)


def sigmoid_betas(n, start=-3.0, end=3.0, tau=1.0):
    t = torch.linspace(0, n, n + 1, dtype=torch.float64) / n
    v_start = torch.tensor(start / tau, dtype=torch.float64).sigmoid()
    v_end = torch.tensor(end / tau, dtype=torch.float64).sigmoid()
    alphas_cumprod = (v_end - ((t * (end - start) + start) / tau).sigmoid()) / (v_end - v_start)
    alphas_cumprod = alphas_cumprod / alphas_cumprod[0]
    return torch.clip(1 - alphas_cumprod[1:] / alphas_cumprod[:-1], 0, 0.999)


BETAS = {"linear": linear_betas, "cosine": cosine_betas, "sigmoid": sigmoid_betas}


def oasis_noise_range(n, steps):
    """[steps + 1] integer levels, -1 (clean) first, as Oasis' sampler indexes them."""
    return torch.linspace(-1, n - 1, steps + 1).long()


def dit_respacing(n, steps):
    """guided-diffusion's respacing of one section (DiT's create_diffusion(str(steps))): start at
    0, add the fractional stride (n - 1)/(steps - 1) (1 for one step) steps - 1 times, rounding
    each position; ascending."""
    stride = 1 if steps <= 1 else (n - 1) / (steps - 1)
    positions, at = [], 0.0
    while len(positions) < steps:
        positions.append(round(at))
        at = at + stride
    return torch.tensor(sorted(set(positions)), dtype=torch.long)


def kept_timesteps(n, steps, spacing="oasis"):
    """The training steps a sampler visits, ascending (the respaced process' timestep map)."""
    return dit_respacing(n, steps) if spacing == "dit" else oasis_noise_range(n, steps)[1:]


def _respaced(alphas_cumprod, kept):
    abar = alphas_cumprod[kept]
    abar_prev = torch.cat([torch.ones(1, dtype=abar.dtype), abar[:-1]])
    betas = 1 - abar / abar_prev
    posterior_variance = betas * (1 - abar_prev) / (1 - abar)
    return dict(
        abar=abar, abar_prev=abar_prev, betas=betas,
        coef1=betas * abar_prev.sqrt() / (1 - abar),
        coef2=(1 - abar_prev) * (1 - betas).sqrt() / (1 - abar),
        log_var_clipped=torch.log(torch.cat([posterior_variance[1:2], posterior_variance[1:]])),
        log_var_large=torch.log(torch.cat([posterior_variance[1:2], betas[1:]])),
    )


def _x0_eps(prediction, out, x, abar):
    """(x̂_0, ε̂) from an ε or v prediction; ε from x̂_0 as guided-diffusion derives it."""
    c = x.shape[1]
    pred = out[:, :c]
    if prediction == "epsilon":
        x0 = (1 / abar).sqrt() * x - (1 / abar - 1).sqrt() * pred
    else:
        x0 = abar.sqrt() * x - (1 - abar).sqrt() * pred
    eps = ((1 / abar).sqrt() * x - x0) / (1 / abar - 1).sqrt()
    return x0, eps


def ddim_loop(model, x, alphas_cumprod, steps, prediction, eta=0.0, noises=None, spacing="oasis"):
    """model(x, timestep int) -> output; x: the starting noise [B, C, H, W]."""
    n = len(alphas_cumprod)
    kept = kept_timesteps(n, steps, spacing)
    p = _respaced(alphas_cumprod, kept)
    for j, k in enumerate(reversed(range(len(kept)))):
        abar, abar_prev = p["abar"][k].to(x.dtype), p["abar_prev"][k].to(x.dtype)
        x0, eps = _x0_eps(prediction, model(x, int(kept[k])), x, abar)
        sigma = eta * ((1 - abar_prev) / (1 - abar)).sqrt() * (1 - abar / abar_prev).sqrt()
        x = x0 * abar_prev.sqrt() + (1 - abar_prev - sigma**2).clamp(min=0).sqrt() * eps
        if k != 0 and eta > 0:
            x = x + sigma * noises[j]
    return x


def ddpm_loop(model, x, alphas_cumprod, steps, prediction, learned_sigma, noises, spacing="oasis"):
    n = len(alphas_cumprod)
    kept = kept_timesteps(n, steps, spacing)
    p = _respaced(alphas_cumprod, kept)
    c = x.shape[1]
    for j, k in enumerate(reversed(range(len(kept)))):
        out = model(x, int(kept[k]))
        x0, _ = _x0_eps(prediction, out, x, p["abar"][k].to(x.dtype))
        mean = p["coef1"][k].to(x.dtype) * x0 + p["coef2"][k].to(x.dtype) * x
        if learned_sigma:
            frac = (out[:, c:] + 1) / 2
            log_var = frac * torch.log(p["betas"][k]).to(x.dtype) + (1 - frac) * p["log_var_clipped"][k].to(x.dtype)
        else:
            log_var = p["log_var_large"][k].to(x.dtype)
        x = mean + (torch.exp(0.5 * log_var) * noises[j] if k != 0 else 0)
    return x


def oasis_ddim_loop(model, x, n, steps):
    """Oasis' DDIM for v-prediction, with its own float32 ᾱ; model(x, timestep int) -> v."""
    alphas_cumprod = torch.cumprod(1.0 - sigmoid_betas(n).float(), dim=0)
    noise_range = torch.linspace(-1, n - 1, steps + 1)
    for noise_idx in reversed(range(1, steps + 1)):
        t, t_next = int(noise_range[noise_idx].long()), int(noise_range[noise_idx - 1].long())
        abar = alphas_cumprod[t]
        v = model(x, t)
        x_start = abar.sqrt() * x - (1 - abar).sqrt() * v
        x_noise = ((1 / abar).sqrt() * x - x_start) / (1 / abar - 1).sqrt()
        abar_next = torch.tensor(1.0) if noise_idx == 1 else alphas_cumprod[t_next]
        x = abar_next.sqrt() * x_start + x_noise * (1 - abar_next).sqrt()
    return x


def flow_loop(velocity, x, steps, heun=False):
    """velocity(x, t float) -> v; t from 1 to 0 in `steps` equal steps."""
    levels = torch.linspace(1, 0, steps + 1)
    for t, s in zip(levels[:-1].tolist(), levels[1:].tolist()):
        v = velocity(x, t)
        if heun and s > 0:
            v = (v + velocity(x + (s - t) * v, s)) / 2
        x = x + (s - t) * v
    return x
