"""`wm bench`: the report's schema and sane relations between its figures (never wall-clock limits)."""

import json

import numpy as np
import pytest

from wm_jax import bench
from wm_jax.bench.compile_time import compile_times
from wm_jax.bench.latency import turned
from wm_jax.bench.profiling import hlo_op_counts
from wm_jax.bench.report import model_under_test
from wm_jax.bench.roofline import GPU_PEAKS, roofline
from wm_jax.bench.timing import summarize
from wm_jax.diffusion import SamplerConfig


def test_summarize_percentiles_and_fps():
    s = summarize(np.array([0.001] * 98 + [0.010, 0.020]))
    assert s["ms_p50"] == pytest.approx(1.0) and s["fps"] == pytest.approx(1000.0)
    assert s["ms_p50"] <= s["ms_p95"] <= s["ms_p99"] <= 20.0 and s["n"] == 100


def test_roofline_takes_the_slower_bound():
    peaks = {"X": {"bf16_flops": 100e12, "bytes_per_s": 1e12}}
    compute_bound = roofline(1e12, 1e9, peaks)["X"]  # 100 fps compute, 1000 fps memory
    assert compute_bound["roofline_fps"] == pytest.approx(100.0) and compute_bound["bound"] == "compute"
    memory_bound = roofline(1e9, 1e11, peaks)["X"]  # 100000 fps compute, 10 fps memory
    assert memory_bound["roofline_fps"] == pytest.approx(10.0) and memory_bound["bound"] == "memory"
    for gpu in ("RTX 4090", "RTX 5090", "H100 SXM"):
        assert GPU_PEAKS[gpu]["bf16_flops"] > 1e14 and GPU_PEAKS[gpu]["bytes_per_s"] > 5e11


def test_randomized_params_leave_no_zero_leaf(tiny_config):
    """A named configuration is benched on `randomized_params`: every leaf non-zero."""
    import jax

    config, params = model_under_test("tiny", checkpoint=None, compute_dtype=None)
    assert config == tiny_config
    for leaf in jax.tree_util.tree_leaves(params):
        assert float(np.abs(np.asarray(leaf)).max()) > 0


def test_sweep_knobs_turn_one_thing_each(tiny_config):
    sampler = SamplerConfig(steps=2, guidance=1.5)
    wide, same = turned(tiny_config, sampler, "window", 16)
    assert (wide.window, wide.max_frames, same) == (16, 17, sampler)  # room for the window + the new frame
    assert wide.replace(window=tiny_config.window, max_frames=tiny_config.max_frames) == tiny_config
    small, same = turned(tiny_config, sampler, "latent_size", 4)
    assert (small.latent_size, small.tokens_per_frame, same) == ((4, 4), 4, sampler)  # 2x2 patches
    config, fewer = turned(tiny_config, sampler, "denoising_steps", 1)
    assert (config, fewer.steps, fewer.guidance) == (tiny_config, 1, 1.5)  # the rest of the sampler kept


def test_hlo_op_counts():
    text = "%a = f32[2] fusion(%x)\n%b = f32[2,2] dot(%a, %a)\n%c = f32[2] fusion(%b)"
    assert hlo_op_counts(text)["fusion"] == 2 and hlo_op_counts(text)["dot"] == 1


def test_run_report_schema_and_relations(tmp_path):
    """The whole `wm bench` report, end to end. Each sweep knob is set to tiny's own value, so its
    row reuses the compiled step (what each knob turns: test_sweep_knobs_turn_one_thing_each)."""
    report = bench.run("tiny", SamplerConfig(steps=2), frames=4, sweep_windows=(4,), sweep_latent_sizes=(8,), sweep_steps=(2,),
                       with_decode=True, with_compile=False, quantize="int8", matmul_shapes=((128, 128, 128), (64, 128, 256)), progress=False)
    json.loads(json.dumps(report))  # JSON-ready
    assert len(report["load_average_start"]) == 3 and len(report["load_average_end"]) == 3
    for key in ("step", "decode", "step_and_decode"):
        s = report["step"][key]
        assert 0 < s["ms_p50"] <= s["ms_p95"] <= s["ms_p99"] and s["n"] == 4
    assert report["decode_with"]["frame_size"] == [64, 64]
    assert report["cache_speedup"] == pytest.approx(report["recompute"]["ms_p50"] / report["step"]["step"]["ms_p50"], rel=0.02)
    mem = report["memory"]
    # 2 temporal layers x K and V x window 4 x 16 tokens x 64 channels x fp32, plus slot bookkeeping
    # and the last frame's 8x8x4 fp32 latent.
    assert mem["kv_cache_bytes"] == 2 * 2 * 4 * 16 * 64 * 4 + 4 * 4 + 4 + 8 * 8 * 4 * 4
    assert report["peak_rss_bytes"] > mem["params_bytes"] > 0
    u = report["utilisation"]
    assert u["fraction"] == pytest.approx(u["step_flops_per_s"] / u["matmul_peak_flops_per_s"])
    assert report["frame_cost"]["flops"] > 0 and report["matmul_peak"]["flops_per_s"] > 1e8
    assert set(report["matmul_peak"]["by_shape"]) == {"128x128x128", "64x128x256"}
    assert report["matmul_peak"]["flops_per_s"] == max(v["best"] for v in report["matmul_peak"]["by_shape"].values())
    (window,), (latent,), (steps,) = (report["sweep"][k] for k in ("window", "latent_size", "denoising_steps"))
    assert (window["window"], latent["latent_size"], steps["denoising_steps"]) == (4, 8, 2)
    assert window["cache_speedup"] == pytest.approx(window["recompute"]["ms_p50"] / window["step"]["ms_p50"], rel=0.02)
    assert "recompute" not in latent and "recompute" not in steps  # the baseline only along the window
    assert {r["tokens_per_frame"] for r in (window, latent, steps)} == {report["tokens_per_frame"]} == {16}
    assert all(r["step"]["n"] == 4 for r in (window, latent, steps))
    q = report["int8"]
    assert q["checkpoint_bytes_int8"] < q["checkpoint_bytes_fp32"] and q["params_bytes_int8"] < q["params_bytes_fp32"] / 2
    assert 20 < q["psnr_latents_db"] < 200 and 0 < q["velocity_relative_error"] < 0.05
    assert len(q["psnr_latents_per_frame_db"]) == q["rollout_frames"]
    assert q["speedup"] == pytest.approx(q["step_fp32"]["ms_p50"] / q["step"]["ms_p50"], rel=0.01)
    md = bench.markdown(report)
    assert "step (KV cache)" in md and "int8" in md and "utilisation" in md and "| latent_size | 8 | 16 |" in md


@pytest.mark.slow
def test_compile_times_second_process_hits_the_persistent_cache(tiny_config):
    times = compile_times(tiny_config, SamplerConfig(steps=2))
    assert times["cache_entries"] > 0
    assert times["persistent_cache_s"] < times["cold_s"]


def test_bench_world_times_the_bundle_as_it_plays(demo_world_dir, tmp_path, monkeypatch):
    """`wm bench --world DIR` times the bundle's own model, autoencoder and sampler (guidance
    included); --steps overrides one field and keeps the rest."""
    import shutil

    from wm_jax import cli

    world_dir = tmp_path / "guided"
    shutil.copytree(demo_world_dir, world_dir)
    meta = json.loads((world_dir / "world.json").read_text())
    meta["sampler"] = {**meta.get("sampler", {}), "steps": 3, "guidance": 2.5}
    (world_dir / "world.json").write_text(json.dumps(meta))
    seen = []
    monkeypatch.setattr(bench, "run", lambda name, sampler, frames, **kw: seen.append((sampler, kw)) or {})
    monkeypatch.setattr(bench, "markdown", lambda report: "")
    assert cli.main(["bench", "--world", str(world_dir), "--quiet"]) == 0
    assert cli.main(["bench", "--world", str(world_dir), "--steps", "1", "--quiet"]) == 0
    (played, kw), (overridden, _) = seen
    assert (played.steps, played.guidance) == (3, 2.5)
    assert (overridden.steps, overridden.guidance) == (1, 2.5)
    assert kw["checkpoint"] == str(world_dir / "model") and kw["autoencoder_dir"] == str(world_dir / meta["autoencoder"])
