"""Load held by the `wm play` server: sessions at once, frames/s each, server memory before/after.

Starts `wm play --max-sessions 2` on a free loopback port in its own process, then for N = 1 and
N = 2 (the server's limit) connects N clients with the `websockets` client; each holds a key
and reads frames for `--seconds`, acknowledging every frame as the page does. While they play,
one more client must be answered "busy" when the server is full. Reports per phase: frames/s
of each session, dropped frames, the server's step time, the server's RSS (before, at its peak
while playing, and once every session has closed), the slots in use afterwards
(`/api/status`), and the load average (`os.getloadavg`) before and after.

    .venv/bin/python benchmarks/play_load.py --world pan --seconds 20             # paced: the world's rate
    .venv/bin/python benchmarks/play_load.py --world pan --seconds 20 --fps 1000  # as fast as it goes
    .venv/bin/python benchmarks/play_load.py --demo --seconds 5                   # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import re
import struct
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
from websockets.sync.client import connect

MAX_SESSIONS = 2
SETTLE = 3.0  # seconds after the sessions close before the "after" RSS is read


def rss_mib(pid: int) -> float:
    """Resident memory of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def start_server(args) -> tuple[subprocess.Popen, str]:
    """`wm play` in its own process; returns it and its address once it serves."""
    wm = os.path.join(os.path.dirname(sys.executable), "wm")
    command = [wm, "play", "--port", "0", "--max-sessions", str(MAX_SESSIONS)]
    command += ["--demo"] if args.demo else ["--world", args.world]
    command += ["--fps", str(args.fps)] if args.fps else []
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=os.environ.get(
        "JAX_COMPILATION_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".cache", "jax")))
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    for line in server.stdout:
        found = re.search(r"serving on (http://[\d.]+:\d+)/", line)
        if found:
            # Keep draining its stdout, so a full pipe never blocks the server.
            threading.Thread(target=server.stdout.read, daemon=True).start()
            return server, found.group(1)
    server.wait(timeout=30)
    raise SystemExit("wm play exited before serving")


def play(address: str, seconds: float, ready: threading.Barrier, out: dict) -> None:
    """One session: hold the world's first key, read and acknowledge frames for `seconds`."""
    with connect(address.replace("http", "ws", 1) + "/ws", open_timeout=120, max_size=None, compression=None) as ws:
        world = None
        while world is None:
            message = ws.recv(timeout=120)
            if isinstance(message, str) and json.loads(message)["type"] == "world":
                world = json.loads(message)["world"]
        key = world["keys"][0]["key"]
        ready.wait(timeout=120)  # every session starts its clock together
        ws.send(json.dumps({"type": "keys", "keys": [key], "seq": 1}))
        frames, steps, dropped, started = 0, [], 0, None
        while started is None or time.perf_counter() - started < seconds:
            message = ws.recv(timeout=60)
            if isinstance(message, str):
                continue
            n = struct.unpack("!I", message[:4])[0]
            header = json.loads(message[4 : 4 + n])
            ws.send(json.dumps({"type": "ack", "id": header["id"]}))
            if header["seq"] != 1:
                continue  # frames made before the key was held
            if started is None:
                started = time.perf_counter()
                continue
            frames += 1
            steps.append(header["step_ms"])
            dropped = header["dropped"]
        elapsed = time.perf_counter() - started
    out.update(key=key, world_fps=world["fps"], frames=frames, fps=round(frames / elapsed, 2),
               step_ms_p50=round(float(np.median(steps)), 2), dropped=dropped)


def refused_as_busy(address: str) -> bool:
    """One more client while the server is full: it must get a "busy" event and close 1013."""
    with connect(address.replace("http", "ws", 1) + "/ws", open_timeout=60, max_size=None) as ws:
        answer = json.loads(ws.recv(timeout=60))
    return answer["type"] == "busy" and ws.close_code == 1013


def sessions_in_use(address: str) -> int:
    with urllib.request.urlopen(address + "/api/status", timeout=30) as answer:
        return json.loads(answer.read())["sessions"]


def phase(server: subprocess.Popen, address: str, n: int, seconds: float) -> dict:
    """n sessions at once; the server's RSS sampled every 0.1 s while they play."""
    load_before, rss_before = os.getloadavg(), rss_mib(server.pid)
    results = [{} for _ in range(n)]
    ready = threading.Barrier(n)
    threads = [threading.Thread(target=play, args=(address, seconds, ready, out)) for out in results]
    for thread in threads:
        thread.start()
    peak, busy = rss_before, None
    while any(thread.is_alive() for thread in threads):
        peak = max(peak, rss_mib(server.pid))
        if busy is None and n == MAX_SESSIONS and sessions_in_use(address) == n:
            busy = refused_as_busy(address)
        time.sleep(0.1)
    for thread in threads:
        thread.join()
    if not all(results):
        raise SystemExit(f"a session of the {n}-session phase failed; see above")
    deadline = time.time() + 30
    while sessions_in_use(address) and time.time() < deadline:  # slots freed?
        time.sleep(0.1)
    time.sleep(SETTLE)
    return {
        "sessions": n, "seconds": seconds, "per_session": results,
        "fps_total": round(sum(r["fps"] for r in results), 2),
        "third_client_refused_busy": busy,
        "rss_mib": {"before": round(rss_before, 1), "peak": round(peak, 1),
                    "after": round(rss_mib(server.pid), 1)},
        "sessions_after": sessions_in_use(address),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--world", default="pan", help="a shipped world (default pan)")
    source.add_argument("--demo", action="store_true", help="the untrained tiny demo world instead")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds each phase plays")
    parser.add_argument("--fps", type=float, help="the server's target rate (default: the world's own; 1000: unpaced)")
    parser.add_argument("--phases", default=f"1,{MAX_SESSIONS}",
                        help=f"sessions at once in each phase, in order (default 1,{MAX_SESSIONS}; "
                             f"repeat {MAX_SESSIONS} to see whether memory grows per round)")
    parser.add_argument("--out", help="also write the report here (JSON)")
    args = parser.parse_args()
    phases = [int(n) for n in args.phases.split(",")]
    if not all(1 <= n <= MAX_SESSIONS for n in phases):
        parser.error(f"--phases: each count must be 1..{MAX_SESSIONS}, got {args.phases}")

    server, address = start_server(args)
    try:
        report = {"world": "demo" if args.demo else args.world, "target_fps": args.fps, "max_sessions": MAX_SESSIONS,
                  "cpus": os.cpu_count(), "rss_mib_serving": round(rss_mib(server.pid), 1),
                  "phases": [phase(server, address, n, args.seconds) for n in phases]}
    finally:
        server.terminate()  # the subprocess this script started, by its handle
        server.wait(timeout=60)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
