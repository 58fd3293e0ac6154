"""What the streaming step costs on this machine, measured: the library behind `wm bench`.

Every function returns plain dicts of numbers (JSON-ready). Wall-clock figures are medians and
percentiles over many frames after a warm-up call, each call blocked until its result is
ready. The machine's load average is recorded at the start and the end of a run
(`wm_jax.machine`): on a shared box the figures are only as quiet as the machine was.

One module per job:

* `timing`: latency of a call (`time_calls`, `summarize`) and the machine's matmul peak;
* `inputs`: untrained params with every block active, context latents, the no-keys action;
* `latency`: the KV-cache step, the recompute baseline, sweeps over window / latent / steps;
* `cost`: FLOPs, bytes and memory per frame from the compiled step, and utilisation;
* `compile_time`: cold and persistent-cache compile seconds, in fresh processes;
* `roofline`: GPU projections, and the large configurations' projection;
* `int8`: weight-only int8 against fp32 (size, speed, rollout PSNR);
* `profiling`: a profiler trace's top XLA ops and the HLO's op counts;
* `decoder`: the autoencoder whose decode is timed with the step;
* `report`: `run`, the whole report; `tables`: its markdown tables (`markdown`).

The names below are the ones used from outside the package; the rest live in their modules.
"""

from wm_jax.bench.inputs import context_latents, no_keys, randomized_params
from wm_jax.bench.latency import bench_step
from wm_jax.bench.tables import markdown
from wm_jax.bench.report import run
from wm_jax.bench.timing import summarize, time_calls

__all__ = ["bench_step", "context_latents", "markdown", "no_keys", "randomized_params", "run", "summarize", "time_calls"]
