"""Facts about the machine and this process that every measurement records beside its figures:
what ran it (platform, devices, XLA flags), how busy the box was (load average) and how much
memory this process holds (current and peak RSS).

No wm_jax imports: the benchmarks and the evaluation both read these, and neither should pull
in the other to do so.
"""

from __future__ import annotations

import os
import platform
import resource

import jax


def machine() -> dict:
    """The platform, CPU count, jax version, backend, devices and XLA flags a report was made on."""
    return {
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def load_average() -> list[float]:
    """os.getloadavg(): other processes on a 2-core box disturb every timing, so it is recorded."""
    return [round(x, 2) for x in os.getloadavg()]


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def rss_bytes() -> int:
    """Current resident memory of this process (for flat-memory checks over long rollouts)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
