"""Where a world's streaming step spends its time (issue 20, item 3): a jax.profiler trace of
the step as the world plays (its model, sampler, guidance), each XLA op's time attributed to the
part of the model its HLO metadata names (spatial attention / MLP, temporal block, cache read,
noise draws, ...) and to its kind (matmul, elementwise fusion, copy/transpose), beside the
step's FLOPs and a matmul peak measured in the same run, the step without guidance, and the decode.

    nice -n 10 .venv/bin/python benchmarks/step_profile.py --world doom
    nice -n 10 .venv/bin/python benchmarks/step_profile.py --world pan --frames 40

The per-op figures come from the trace (the 2 threads can overlap ops); wall times are medians
of untraced calls. Prints JSON.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import glob
import gzip
import json
import os
import re
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

from wm_jax import autoencoder, model, rollout
from wm_jax import bundle
from wm_jax.bench.inputs import context_latents, no_keys
from wm_jax.bench.profiling import hlo_op_counts
from wm_jax.bench.timing import matmul_peak, time_calls
from wm_jax.machine import load_average

# (pattern on the HLO metadata op_name, part). First match wins.
PARTS = (
    (r"read_cache", "cache read (rotation by age)"),
    (r"temporal_\d+\.stream/temporal_\d+\._project/attn|temporal_\d+\.stream/temporal_\d+\._project", "temporal qkv + adaLN"),
    (r"temporal_\d+\.stream/temporal_\d+\._finish|temporal_\d+\.stream/proj", "temporal out proj"),
    (r"temporal_\d+\.stream/temporal_\d+\.adaLN|temporal_\d+\.stream/adaLN", "temporal adaLN"),
    (r"temporal_\d+\.stream", "temporal attention (scores, softmax, mix)"),
    (r"spatial_\d+/attn/qkv|spatial_\d+/attn", "spatial qkv"),
    (r"spatial_\d+/proj", "spatial out proj"),
    (r"spatial_\d+/mlp", "spatial MLP"),
    (r"spatial_\d+/adaLN", "spatial adaLN"),
    (r"spatial_\d+", "spatial attention (rope, scores, softmax, norms)"),
    (r"final", "final layer"),
    (r"t_embed|action_embed|conditioning", "conditioning"),
    (r"patch_embed|_embed", "patch embed"),
    (r"random|threefry|_normal|_uniform", "noise draws"),
    (r"scatter|dynamic.update", "cache write"),
)


def part_of(op_name: str) -> str:
    for pattern, part in PARTS:
        if re.search(pattern, op_name):
            return part
    return "other (sampler arithmetic, guidance mix, glue)"


def kind_of(name: str) -> str:
    if name.startswith(("dot", "ynn", "convolution", "custom-call")):
        return "matmul"
    if name.startswith(("copy", "transpose")) or "transpose" in name:
        return "copy/transpose"
    if name.startswith("while"):
        return "loop"
    return "elementwise/reduce fusion"


def op_names(hlo_text: str) -> dict[str, str]:
    """Instruction name -> the op_name of its metadata, for the top-level (not fused) instructions."""
    names = {}
    for line in hlo_text.splitlines():
        match = re.match(r"\s*(?:ROOT )?%?([\w.\-]+) = .*?op_name=\"([^\"]*)\"", line)
        if match and match.group(1) not in names:
            names[match.group(1)] = match.group(2)
    return names


def trace_ops(directory: str) -> collections.Counter:
    traces = sorted(glob.glob(os.path.join(directory, "**", "*.trace.json.gz"), recursive=True), key=os.path.getmtime)
    with gzip.open(traces[-1]) as f:
        events = json.load(f)
    events = events["traceEvents"] if isinstance(events, dict) else events
    ops = collections.Counter()
    for e in events:
        name = e.get("name", "")
        if e.get("ph") == "X" and not name.startswith(("$", "end:")) and "::" not in name and "Pjit" not in name and " " not in name:
            ops[name] += e.get("dur", 0)
    return ops


def timed(call, n: int) -> float:
    """Median seconds of n calls after two warm-up calls."""
    return float(np.median(time_calls(call, n)))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", default="doom")
    parser.add_argument("--frames", type=int, default=30)
    args = parser.parse_args(argv)
    info, model_dir, ae_dir, _ = bundle.read_bundle(bundle.locate(args.world))
    config, params = model.load(str(model_dir))
    sampler = info.sampler
    report = {"world": args.world, "sampler": dataclasses.asdict(sampler), "load_average_start": load_average(),
              "tokens_per_frame": config.tokens_per_frame, "width": config.width, "depth": config.depth}
    report["matmul_peak_gflops"] = round(matmul_peak()["flops_per_s"] / 1e9, 1)

    action = no_keys(config)
    context = context_latents(config, 2, jax.random.key(1))
    fresh = lambda s: rollout.init_state(config, params, context, rng=jax.random.key(2), sampler=s)
    state = fresh(sampler)
    compiled = rollout.make_step(config, sampler).lower(params, state, action, jax.random.key(3)).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    report["gflop_per_frame"] = round(float(cost["flops"]) / 1e9, 3)

    # Wall time per frame: the world's sampler, then without guidance, then the decode alone.
    holder = {"state": state}

    def call(i, step=compiled, box=holder):
        box["state"], latent = step(params, box["state"], action, jax.random.key(100 + i))
        return latent

    seconds = timed(call, args.frames)
    report["step_ms"] = round(1e3 * seconds, 3)
    report["step_gflops_per_s"] = round(float(cost["flops"]) / seconds / 1e9, 1)
    report["of_matmul_peak"] = round(report["step_gflops_per_s"] / report["matmul_peak_gflops"], 3)
    plain = dataclasses.replace(sampler, guidance=1.0)
    plain_box = {"state": fresh(plain)}
    plain_step = rollout.make_step(config, plain)
    report["step_ms_without_guidance"] = round(1e3 * timed(lambda i: call(i, plain_step, plain_box), args.frames), 3)
    ae_config, variables = autoencoder.load(str(ae_dir))
    decode = jax.jit(lambda latent: autoencoder.decode(variables, latent, ae_config))
    latent = jnp.zeros((1, *config.latent_size, config.in_channels))
    report["decode_ms"] = round(1e3 * timed(lambda i: decode(latent), args.frames), 3)

    # The trace: each op's time by part and by kind.
    names = op_names(compiled.as_text())
    with tempfile.TemporaryDirectory() as directory:
        with jax.profiler.trace(directory, create_perfetto_trace=True):
            for i in range(args.frames):
                call(1000 + i)
            jax.block_until_ready(holder["state"])
        ops = trace_ops(directory)
    per_frame = {name: us / args.frames for name, us in ops.items()}
    total = sum(per_frame.values())
    by_part, by_kind, by_part_kind = collections.Counter(), collections.Counter(), collections.Counter()
    for name, us in per_frame.items():
        part, kind = part_of(names.get(name, "")), kind_of(name)
        by_part[part] += us
        by_kind[kind] += us
        by_part_kind[f"{part} | {kind}"] += us
    share = lambda counter: {k: [round(v, 1), round(v / total, 3)] for k, v in counter.most_common()}
    report["trace"] = {"xla_op_us_per_frame": round(total, 1), "ops_per_frame": len(per_frame),
                       "by_kind_us_share": share(by_kind), "by_part_us_share": share(by_part),
                       "by_part_and_kind_us_share": share(by_part_kind),
                       "top_ops_us": {k: round(v, 1) for k, v in sorted(per_frame.items(), key=lambda kv: -kv[1])[:15]}}
    report["op_counts"] = hlo_op_counts(compiled.as_text())
    report["load_average_end"] = load_average()
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
