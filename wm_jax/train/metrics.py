"""Where training numbers go: WORKDIR/metrics.jsonl (one JSON object per logged step, always
with `step`), TensorBoard event files in WORKDIR/tb, a tqdm progress bar, and the report of
the compiled step (XLA memory analysis and FLOPs). Only process 0 writes."""

from __future__ import annotations

import json
import math
import os
import time
from typing import Mapping

import jax
import tqdm

from wm_jax import info

METRICS_FILE = "metrics.jsonl"


class MetricsWriter:
    def __init__(self, workdir: str, *, resume_step: int = 0, enabled: bool | None = None):
        self.enabled = jax.process_index() == 0 if enabled is None else enabled
        self.path = os.path.join(workdir, METRICS_FILE)
        self._tb = None
        if not self.enabled:
            return
        # A run killed after its last checkpoint logged steps it will now repeat: drop them so
        # the file holds each step once.
        rows = [row for row in read_metrics(workdir) if row["step"] <= resume_step] if os.path.exists(self.path) else []
        with open(self.path, "w") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows)
        from tensorboardX import SummaryWriter

        self._tb = SummaryWriter(os.path.join(workdir, "tb"), purge_step=resume_step + 1 if resume_step else None)

    def write(self, step: int, scalars: Mapping[str, float]) -> None:
        if not self.enabled:
            return
        row = {"step": int(step), **{k: _plain(v) for k, v in scalars.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        for key, value in row.items():
            if key != "step" and isinstance(value, float):
                self._tb.add_scalar(key, value, step)

    def image(self, step: int, tag: str, image_HWC) -> None:
        if self.enabled:
            self._tb.add_image(tag, image_HWC, step, dataformats="HWC")

    def text(self, tag: str, text: str) -> None:
        if self.enabled:
            self._tb.add_text(tag, text.replace("\n", "  \n"), 0)

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def _plain(value):
    value = float(value)
    return value if math.isfinite(value) else str(value)  # JSON has no NaN; keep it readable


def read_metrics(workdir: str) -> list[dict]:
    path = os.path.join(workdir, METRICS_FILE) if os.path.isdir(workdir) else workdir
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: is {workdir} a `wm train` workdir?")
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    break  # a line cut short by a kill: everything before it is good
    return rows


def compiled_report(compiled) -> dict:
    """FLOPs and bytes of one step (per device, as XLA partitioned it) and its memory needs."""
    report = info.compiled_cost(compiled)
    memory = compiled.memory_analysis()
    if memory is not None:
        for field in ("argument_size_in_bytes", "output_size_in_bytes", "alias_size_in_bytes",
                      "temp_size_in_bytes", "generated_code_size_in_bytes"):
            report[field] = int(getattr(memory, field, 0))
        # Donated state aliases its output, so peak is arguments + temporaries + non-aliased outputs.
        report["peak_bytes_estimate"] = (report["argument_size_in_bytes"] + report["temp_size_in_bytes"]
                                         + report["output_size_in_bytes"] - report["alias_size_in_bytes"])
    return report


def format_report(report: dict) -> str:
    gib = lambda b: f"{b / 2**30:.3f} GiB"
    lines = [f"step FLOPs (per device): {report['flops'] / 1e9:.3f} GFLOP"]
    if "temp_size_in_bytes" in report:
        lines.append(
            f"memory per device: arguments {gib(report['argument_size_in_bytes'])}, temporaries "
            f"{gib(report['temp_size_in_bytes'])}, outputs {gib(report['output_size_in_bytes'])} "
            f"(aliased {gib(report['alias_size_in_bytes'])}), peak ~{gib(report['peak_bytes_estimate'])}"
        )
    return "\n".join(lines)


class Progress:
    """tqdm bar with loss, steps/s, frames/s and achieved FLOP/s (over the last interval)."""

    def __init__(self, start: int, total: int, frames_per_step: int, flops_per_step: float, enabled: bool | None = None):
        enabled = jax.process_index() == 0 if enabled is None else enabled
        self.bar = tqdm.tqdm(initial=start, total=total, unit="step", dynamic_ncols=True, disable=not enabled)
        self.frames_per_step, self.flops_per_step = frames_per_step, flops_per_step
        self._last_step, self._last_time = start, time.perf_counter()

    def update(self, step: int, loss: float) -> dict:
        now = time.perf_counter()
        steps = step - self._last_step
        rate = steps / max(now - self._last_time, 1e-9)
        self._last_step, self._last_time = step, now
        speed = {"steps_per_s": rate, "frames_per_s": rate * self.frames_per_step,
                 "flops_per_s": rate * self.flops_per_step}
        self.bar.update(steps)
        self.bar.set_postfix(loss=f"{loss:.4f}", it_s=f"{rate:.2f}", fps=f"{speed['frames_per_s']:.0f}",
                             gflops=f"{speed['flops_per_s'] / 1e9:.2f}", refresh=False)
        return speed

    def write(self, message: str) -> None:
        self.bar.write(message)

    def close(self) -> None:
        self.bar.close()
