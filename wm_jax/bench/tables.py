"""The `wm bench` report's headline figures as markdown tables (what `wm bench` prints and
writes beside the JSON): one function per section of the report."""

from __future__ import annotations


def markdown(report: dict) -> str:
    """The report's headline figures as markdown tables."""
    lines = _title(report) + _latency_table(report) + _summary(report)
    if report.get("sweep"):
        lines += _sweep_table(report["sweep"])
    if "int8" in report:
        lines += _int8_line(report["int8"])
    for proj in report.get("roofline", []):
        lines += _projection(proj, report["matmul_peak"])
    return "\n".join(lines) + "\n"


def _title(report: dict) -> list[str]:
    return [f"### wm bench: `{report['config']}` ({report.get('compute_dtype', 'float32')}), {report['denoising_steps']} denoising steps, "
            f"guidance {report.get('guidance', 1.0)}, window {report['window']}",
            "", f"load average at start / end: {report['load_average_start']} / {report['load_average_end']}", ""]


def _latency_table(report: dict) -> list[str]:
    """p50/p95/p99/fps of the cached step, the recompute baseline, decoding and int8, when measured."""
    rows = [("step (KV cache)", report["step"]["step"]), ("recompute baseline", report["recompute"])]
    for key, label in (("decode", "decode only"), ("step_and_decode", "step + decode")):
        if key in report["step"]:
            rows.append((label, report["step"][key]))
    if "int8" in report:
        rows.append(("step, int8 weights", report["int8"]["step"]))
    lines = ["| what | p50 ms | p95 ms | p99 ms | fps |", "|---|---|---|---|---|"]
    return lines + [f"| {label} | {s['ms_p50']} | {s['ms_p95']} | {s['ms_p99']} | {s['fps']} |" for label, s in rows]


def _summary(report: dict) -> list[str]:
    """Cache speedup, compile times, memory, and utilisation against the matmul peak."""
    u, mem = report["utilisation"], report["memory"]
    return ["", f"cache speedup over recompute: **{report['cache_speedup']}x**; "
            f"compile cold {report['compile']['cold_s']} s, from persistent cache {report['compile']['persistent_cache_s']} s; "
            f"process peak RSS (whole run) {report['peak_rss_bytes'] / 2**20:.0f} MiB; KV cache {mem['kv_cache_bytes']:,} B; "
            f"XLA temp {mem.get('temp_size_in_bytes', 0):,} B",
            f"achieved {u['step_flops_per_s'] / 1e9:.2f} GFLOP/s vs measured matmul peak "
            f"{u['matmul_peak_flops_per_s'] / 1e9:.1f} GFLOP/s ({report['matmul_peak']['best_shape']}): utilisation {100 * u['fraction']:.1f}%"]


def _sweep_table(sweep: dict) -> list[str]:
    lines = ["", "| knob | value | tokens/frame | step p50 ms | recompute p50 ms | speedup |", "|---|---|---|---|---|---|"]
    for knob, rows in sweep.items():
        for r in rows:
            rec = r.get("recompute", {}).get("ms_p50", "")
            lines.append(f"| {knob} | {r[knob]} | {r['tokens_per_frame']} | {r['step']['ms_p50']} | {rec} | {r.get('cache_speedup', '')} |")
    return lines


def _int8_line(q: dict) -> list[str]:
    decoded = f", decoded frames {q['psnr_frames_db']:.1f} dB" if "psnr_frames_db" in q else ""
    return ["", f"int8: checkpoint {q['checkpoint_bytes_int8']:,} B vs fp32 {q['checkpoint_bytes_fp32']:,} B "
            f"({q['checkpoint_ratio']:.2f}x smaller); step p50 {q['step']['ms_p50']} ms vs fp32 {q['step_fp32']['ms_p50']} ms "
            f"(speedup {q['speedup']}x); PSNR int8 vs fp32 rollout over {q['rollout_frames']} frames: "
            f"latents {q['psnr_latents_db']:.1f} dB, one-pass velocity relative error {q['velocity_relative_error']:.2e}" + decoded]


def _projection(proj: dict, matmul_peak: dict) -> list[str]:
    """One large configuration: its cost per frame, its time here, and the GPU roofline table."""
    here = proj["this_machine"]
    lines = ["", f"**{proj['config']}** ({proj.get('compute_dtype', 'float32')}, {proj['latent_shape']} latents, {proj['denoising_steps']} steps + 1 cache pass): "
             f"{proj['flops_per_frame'] / 1e9:.1f} GFLOP, {proj['bytes_per_frame_fp32'] / 1e9:.2f} GB (fp32) per frame; "
             f"this CPU: {here['ms_p50'] / 1e3:.2f} s/frame = {proj['this_machine_flops_per_s'] / 1e9:.0f} GFLOP/s "
             f"({100 * proj['this_machine_flops_per_s'] / matmul_peak['flops_per_s']:.0f}% of the matmul peak). Projection (not measured):", "",
             "| GPU | peak BF16 TFLOP/s | GB/s | fps compute-bound | fps memory-bound (fp32 / bf16 bytes) | roofline fps (bf16) |",
             "|---|---|---|---|---|---|"]
    for gpu, p in proj["projection_bf16_bytes"].items():
        p32 = proj["projection_fp32_bytes"][gpu]
        lines.append(f"| {gpu} | {p['peak_bf16_flops'] / 1e12:.1f} | {p['peak_bytes_per_s'] / 1e9:.0f} | {p['compute_bound_fps']} | "
                     f"{p32['memory_bound_fps']} / {p['memory_bound_fps']} | {p['roofline_fps']} ({p['bound']}) |")
    if "int8" in proj:
        q = proj["int8"]
        fps = ", ".join(f"{gpu} {p['roofline_fps']} ({p['bound']})" for gpu, p in q["projection_bf16_int8_weights"].items())
        lines += ["", f"int8 weights: this CPU {q['this_machine']['ms_p50'] / 1e3:.2f} s/frame (fp32 {here['ms_p50'] / 1e3:.2f} s); "
                  f"projection with bf16 activations + int8 weights (-{q['weight_bytes_saved_per_frame_vs_bf16'] / 1e9:.2f} GB/frame): {fps}"]
    return lines
