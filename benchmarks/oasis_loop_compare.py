"""wm_jax's cached step against Oasis' own sampling loop, same weights (issue 20's comparison).

    taskset -c 1 nice -n 10 .venv/bin/python benchmarks/oasis_loop_compare.py --oasis-src PATH \
        [--configs small,500m-d2] [--windows 4,8,32] [--steps N] [--frames N] [--timm-stand-in]

PATH is an installed copy of open-oasis (https://github.com/etched-ai/open-oasis; its `dit.py`,
`attention.py` and `rotary_embedding_torch.py`), never vendored here: the script puts PATH on
sys.path and imports `dit.DiT`. Without --oasis-src (or if PATH has no dit.py) it prints what to
pass and exits 0. The upstream code needs `torch`, `einops` and `timm` (`timm` for `Mlp` and
`to_2tuple`; timm itself imports torchvision). Where timm cannot be imported (here: no CPU
torchvision wheel for this torch), `--timm-stand-in` puts a stand-in for exactly those two
names into sys.modules (timm's `Mlp` as Oasis builds it: fc1 -> act -> fc2, dropout 0, no norm;
the parameter names and the arithmetic are timm's); the DiT itself is still upstream's.

Per config and window W (the frames the model sees per new frame, the new one included: Oasis'
`model.max_frames`; wm_jax's `--max-frames W`, a cache of W - 1 frames):

1. builds the upstream `DiT(...)` (torch.manual_seed(0)), fills every weight with N(0, 0.02²)
   (upstream's init zeroes adaLN and the final layer, so the output would be 0 whatever the
   conversion did), keeps the rotary tables, saves its state_dict to a temporary `.pt`;
2. converts it with `wm convert SRC DST --layout oasis --latent-size HxW --heads H --max-frames W`
   (a child process: the path a user takes) and prints the max abs difference between the
   upstream forward and the converted model's (`wm_jax.conversion.layouts.oasis.forward_error`) on W frames;
3. times per frame, after one warm-up frame, with a full window (W - 1 random context frames):
   (a) Oasis' loop as its generate.py runs it (stabilized version, commit f59deef): per new frame
       a clamped randn chunk is appended, and at every one of the `--steps` DDIM steps the whole
       sliding window (the last W frames) is re-run through the model, context clean labelled
       level 14, v-prediction DDIM update of the last frame; fp32 (no autocast: CPU), one
       PyTorch thread (torch.set_num_threads(1));
   (b) wm_jax's cached step: `rollout.make_step` with the converted directory's recorded sampler
       (`bundle.recorded_sampler`: Oasis' recipe) at `--steps`, its cache prefilled with the same
       W - 1 frames (`rollout.init_state`).
   Both in this one process, so pin it: `taskset -c 1` makes both use one core.

Prints a markdown table (config, steps, window, Oasis loop s/frame, wm_jax s/frame, ratio, load
average before -> after the row) and, with --json, the raw per-frame times.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
import types

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

# name -> upstream DiT keyword arguments, DDIM steps used when --steps is not given
CONFIGS = {
    # the shipped worlds' shape: width 128, depth 6, 16x16x8 latents, patch 2 (64 tokens)
    "small": (dict(input_h=16, input_w=16, patch_size=2, in_channels=8, hidden_size=128, depth=6, num_heads=4,
                   mlp_ratio=4.0, external_cond_dim=25), 4),
    # Oasis 500M (DiT-S/2) cut to 2 of its 16 blocks: width 1024, 16 heads, 18x32x16 latents (144 tokens)
    "500m-d2": (dict(input_h=18, input_w=32, patch_size=2, in_channels=16, hidden_size=1024, depth=2, num_heads=16,
                     mlp_ratio=4.0, external_cond_dim=25), 1),
    # the whole Oasis 500M (slow: minutes per row)
    "500m": (dict(input_h=18, input_w=32, patch_size=2, in_channels=16, hidden_size=1024, depth=16, num_heads=16,
                  mlp_ratio=4.0, external_cond_dim=25), 1),
}
STABILIZATION_LEVEL = 15  # generate.py: context labelled stabilization_level - 1
NOISE_ABS_MAX = 20.0
MAX_NOISE_LEVEL = 1000


def install_timm_stand_in() -> None:
    """timm.models.vision_transformer.Mlp and timm.layers.helpers.to_2tuple, the two names
    open-oasis' dit.py imports from timm, for machines where timm cannot be imported."""
    from torch import nn

    class Mlp(nn.Module):
        def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, bias=True,
                     drop=0.0, norm_layer=None, use_conv=False):
            super().__init__()
            if drop or norm_layer is not None or use_conv:
                raise ValueError("the stand-in has no dropout, norm or conv (Oasis' Mlp has none)")
            self.fc1 = nn.Linear(in_features, hidden_features or in_features, bias=bias)
            self.act = act_layer()
            self.fc2 = nn.Linear(hidden_features or in_features, out_features or in_features, bias=bias)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))

    def to_2tuple(x):
        return tuple(x) if isinstance(x, (tuple, list)) else (x, x)

    modules = {name: types.ModuleType(name) for name in
               ("timm", "timm.models", "timm.models.vision_transformer", "timm.layers", "timm.layers.helpers")}
    modules["timm.models.vision_transformer"].Mlp = Mlp
    modules["timm.layers.helpers"].to_2tuple = to_2tuple
    sys.modules.update(modules)


def import_upstream(src: str, timm_stand_in: bool):
    sys.path.insert(0, os.path.abspath(src))
    if timm_stand_in:
        install_timm_stand_in()
    try:
        import dit
    except Exception as error:  # timm/einops missing, or timm's torchvision import failing
        raise SystemExit(f"importing {src}/dit.py failed ({type(error).__name__}: {error}); it needs torch, einops "
                         f"and timm (timm imports torchvision); or pass --timm-stand-in") from error
    return dit


def upstream_model(dit, kwargs: dict, window: int):
    import torch

    torch.manual_seed(0)
    model = dit.DiT(**kwargs, max_frames=window).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.endswith("freqs"):  # the rotary tables stay as upstream computes them
                p.normal_(0.0, 0.02)
    return model


def convert(model, kwargs: dict, window: int, work: str) -> tuple[str, float]:
    """Save the state_dict, run `wm convert --layout oasis` as a child; (directory, seconds)."""
    import torch

    src, dst = os.path.join(work, "oasis_random.pt"), os.path.join(work, f"oasis_wm_w{window}")
    torch.save(model.state_dict(), src)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "wm_jax.cli", "convert", src, dst, "--layout", "oasis",
                    "--latent-size", f"{kwargs['input_h']}x{kwargs['input_w']}", "--heads", str(kwargs["num_heads"]),
                    "--max-frames", str(window)], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return dst, time.perf_counter() - started


def forward_difference(model, directory: str, kwargs: dict, window: int) -> float:
    import numpy as np
    import torch

    from wm_jax.conversion.layouts import oasis
    from wm_jax import model as wm_model

    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, window, kwargs["in_channels"], kwargs["input_h"], kwargs["input_w"], generator=gen)
    t = torch.randint(0, MAX_NOISE_LEVEL, (1, window), generator=gen)
    cond = torch.randn(1, window, kwargs["external_cond_dim"], generator=gen)
    with torch.no_grad():
        out = model(x, t, cond)
    config, params = wm_model.load(directory)
    reference = {"x": x.numpy(), "t": t.numpy(), "cond": cond.numpy(), "out": out.numpy()}
    return float(oasis.forward_error(config, params, {k: np.asarray(v) for k, v in reference.items()})["oasis"])


def alphas_cumprod_oasis():
    """ᾱ as generate.py computes it: float32 cumprod of 1 - sigmoid_beta_schedule(1000) (utils.py's
    schedule, arXiv 2212.11972 fig. 8: start -3, end 3, tau 1, betas clipped to [0, 0.999])."""
    import torch

    steps = MAX_NOISE_LEVEL + 1
    t = torch.linspace(0, MAX_NOISE_LEVEL, steps, dtype=torch.float64) / MAX_NOISE_LEVEL
    v_start, v_end = torch.tensor(-3.0).sigmoid(), torch.tensor(3.0).sigmoid()
    ac = (-((t * 6.0 - 3.0)).sigmoid() + v_end) / (v_end - v_start)
    ac = ac / ac[0]
    betas = torch.clip(1 - ac[1:] / ac[:-1], 0, 0.999).float()
    return torch.cumprod(1.0 - betas, dim=0).reshape(-1, 1, 1, 1)


def time_oasis_loop(model, kwargs: dict, window: int, steps: int, frames: int) -> list[float]:
    """Seconds per generated frame of generate.py's loop (first entry: the warm-up frame)."""
    import torch

    alphas_cumprod = alphas_cumprod_oasis()
    noise_range = torch.linspace(-1, MAX_NOISE_LEVEL - 1, steps + 1)
    gen = torch.Generator().manual_seed(2)
    n_prompt = window - 1  # the window is full from the first generated frame on
    total = n_prompt + 1 + frames
    x = torch.randn(1, n_prompt, kwargs["in_channels"], kwargs["input_h"], kwargs["input_w"], generator=gen)
    actions = torch.zeros(1, total, kwargs["external_cond_dim"])
    B, seconds = 1, []
    for i in range(n_prompt, total):
        started = time.perf_counter()
        chunk = torch.clamp(torch.randn((B, 1, *x.shape[-3:]), generator=gen), -NOISE_ABS_MAX, NOISE_ABS_MAX)
        x = torch.cat([x, chunk], dim=1)
        start_frame = max(0, i + 1 - model.max_frames)
        for noise_idx in reversed(range(1, steps + 1)):
            t_ctx = torch.full((B, i), STABILIZATION_LEVEL - 1, dtype=torch.long)
            t = torch.full((B, 1), noise_range[noise_idx], dtype=torch.long)
            t_next = torch.full((B, 1), noise_range[noise_idx - 1], dtype=torch.long)
            t_next = torch.where(t_next < 0, t, t_next)
            t = torch.cat([t_ctx, t], dim=1)[:, start_frame:]
            t_next = torch.cat([t_ctx, t_next], dim=1)[:, start_frame:]
            x_curr = x.clone()[:, start_frame:]
            with torch.no_grad():
                v = model(x_curr, t, actions[:, start_frame : i + 1])
            a = alphas_cumprod[t]
            x_start = a.sqrt() * x_curr - (1 - a).sqrt() * v
            x_noise = ((1 / a).sqrt() * x_curr - x_start) / (1 / a - 1).sqrt()
            alpha_next = alphas_cumprod[t_next]
            alpha_next[:, :-1] = torch.ones_like(alpha_next[:, :-1])
            if noise_idx == 1:
                alpha_next[:, -1:] = torch.ones_like(alpha_next[:, -1:])
            x_pred = alpha_next.sqrt() * x_start + x_noise * (1 - alpha_next).sqrt()
            x[:, -1:] = x_pred[:, -1:]
        seconds.append(time.perf_counter() - started)
    return seconds


def time_wm_step(directory: str, window: int, steps: int, frames: int) -> list[float]:
    """Seconds per frame of rollout.make_step (first entry: the compiling call)."""
    import jax

    from wm_jax import bench, rollout
    from wm_jax import model as wm_model
    from wm_jax import bundle

    config, params = wm_model.load(directory)
    sampler = dataclasses.replace(bundle.recorded_sampler(directory), steps=steps)
    context = bench.context_latents(config, window - 1, jax.random.key(1))
    state = rollout.init_state(config, params, context, rng=jax.random.key(2), sampler=sampler)
    step = rollout.make_step(config, sampler)
    action = bench.no_keys(config)
    seconds = []
    for i in range(frames + 1):
        started = time.perf_counter()
        state, latent = step(params, state, action, jax.random.key(10 + i))
        latent.block_until_ready()
        seconds.append(time.perf_counter() - started)
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--oasis-src", default=None, help="an installed copy of open-oasis (the folder with dit.py)")
    parser.add_argument("--configs", default="small,500m-d2", help=f"comma list of {sorted(CONFIGS)}")
    parser.add_argument("--windows", default="4,8,32", help="comma list of windows (frames seen per new frame)")
    parser.add_argument("--steps", type=int, default=None, help="DDIM steps (default: small 4, 500m* 1)")
    parser.add_argument("--frames", type=int, default=3, help="timed frames per row, after one warm-up frame")
    parser.add_argument("--timm-stand-in", action="store_true", help="stand in for timm's Mlp/to_2tuple (see above)")
    parser.add_argument("--json", action="store_true", help="also print the raw per-frame times as JSON")
    args = parser.parse_args(argv)
    if not args.oasis_src or not os.path.isfile(os.path.join(args.oasis_src, "dit.py")):
        print("oasis_loop_compare: skipped; pass --oasis-src PATH, PATH an installed copy of open-oasis "
              "(github.com/etched-ai/open-oasis, the folder holding dit.py)")
        return 0
    import numpy as np
    import torch

    torch.set_num_threads(1)
    dit = import_upstream(args.oasis_src, args.timm_stand_in)
    rows, raw = [], []
    print(f"affinity: {len(os.sched_getaffinity(0))} core(s) {sorted(os.sched_getaffinity(0))}, torch threads "
          f"{torch.get_num_threads()}, torch {torch.__version__}", flush=True)
    for name in args.configs.split(","):
        kwargs, default_steps = CONFIGS[name]
        steps = args.steps or default_steps
        for window in (int(w) for w in args.windows.split(",")):
            load_before = [round(x, 2) for x in os.getloadavg()]
            model = upstream_model(dit, kwargs, window)
            with tempfile.TemporaryDirectory() as work:
                directory, convert_s = convert(model, kwargs, window, work)
                diff = forward_difference(model, directory, kwargs, window)
                oasis_s = time_oasis_loop(model, kwargs, window, steps, args.frames)
                wm_s = time_wm_step(directory, window, steps, args.frames)
            load_after = [round(x, 2) for x in os.getloadavg()]
            o, w = float(np.median(oasis_s[1:])), float(np.median(wm_s[1:]))
            row = dict(config=name, steps=steps, window=window, oasis_s=o, wm_s=w, ratio=o / w,
                       load=f"{load_before[0]:.2f} -> {load_after[0]:.2f}", max_abs_diff=diff,
                       convert_s=round(convert_s, 1), oasis_per_frame=[round(s, 3) for s in oasis_s],
                       wm_per_frame=[round(s, 3) for s in wm_s])
            rows.append(row)
            raw.append(row)
            print(f"{name} steps {steps} window {window}: forward max abs diff {diff:.2e}; Oasis loop {o:.3f} s/frame, "
                  f"wm_jax {w:.3f} s/frame, ratio {o / w:.1f}; load {row['load']}", flush=True)
            del model
    print("\n| config | steps | window | Oasis loop (s/frame) | wm_jax (s/frame) | ratio | load (1-min, before -> after) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['steps']} | {r['window']} | {r['oasis_s']:.3f} | {r['wm_s']:.3f} | "
              f"{r['ratio']:.1f} | {r['load']} |")
    if args.json:
        print(json.dumps(raw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
