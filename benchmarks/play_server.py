"""Frames per second and input-to-frame latency of a world through the `wm play` server.

Starts `wm play` in a subprocess (its own process, as a player would use it), connects one
WebSocket client that acknowledges every frame as the page does, changes the held keys every
`--switch` seconds, and reports: frames received per second, the server's step time, and the
latency from a key change to the first frame generated with it.

    .venv/bin/python benchmarks/play_server.py --demo --fps 1000 --seconds 10   # as fast as it goes
    .venv/bin/python benchmarks/play_server.py --demo --fps 20 --seconds 10     # paced like play
    .venv/bin/python benchmarks/play_server.py --checkpoint DIR
"""

from __future__ import annotations

import argparse
import json
import os
import re
import struct
import subprocess
import sys
import time

import numpy as np
from websockets.sync.client import connect


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--demo", action="store_true", help="the untrained tiny demo world (64x64, pixel space)")
    source.add_argument("--checkpoint", help="a world bundle directory")
    source.add_argument("--world", help="a shipped world")
    parser.add_argument("--fps", type=float, default=1000.0, help="server target rate (1000: unpaced)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--switch", type=float, default=0.25, help="seconds between key changes")
    args = parser.parse_args()

    wm = os.path.join(os.path.dirname(sys.executable), "wm")
    command = [wm, "play", "--port", "0", "--fps", str(args.fps)]
    command += ["--demo"] if args.demo else ["--checkpoint", args.checkpoint] if args.checkpoint else ["--world", args.world]
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=os.environ.get(
        "JAX_COMPILATION_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".cache", "jax")))
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        for line in server.stdout:
            found = re.search(r"serving on http://([\d.]+):(\d+)/", line)
            if found:
                host, port = found.group(1), int(found.group(2))
                break
        else:
            raise SystemExit("wm play exited before serving")
        with connect(f"ws://{host}:{port}/ws", open_timeout=120, max_size=None, compression=None) as ws:
            keys_cycle, seq, sent_at = [["w"], ["a"], ["d"], []], 0, {}
            latencies, steps, frames, times = [], [], 0, []
            started = next_switch = None
            while True:
                data = ws.recv()
                if isinstance(data, str):  # events; frames are binary
                    continue
                now = time.perf_counter()
                n = struct.unpack("!I", data[:4])[0]
                header = json.loads(data[4 : 4 + n])
                ws.send(json.dumps({"type": "ack", "id": header["id"]}))
                if header["n"] == 0:
                    continue
                if started is None:  # the clock starts at the first generated frame
                    started, next_switch = now, now
                frames += 1
                times.append(now)
                steps.append(header["step_ms"])
                if header["seq"] in sent_at:
                    latencies.append((now - sent_at.pop(header["seq"])) * 1e3)
                if now >= next_switch:
                    seq += 1
                    sent_at[seq] = time.perf_counter()
                    ws.send(json.dumps({"type": "keys", "keys": keys_cycle[seq % 4], "seq": seq}))
                    next_switch = now + args.switch
                if now - started >= args.seconds:
                    break
    finally:
        server.terminate()  # the subprocess this script started, by its handle
        server.wait(timeout=30)
    elapsed = times[-1] - times[0]
    print(json.dumps({
        "target_fps": args.fps, "seconds": round(elapsed, 2), "frames": frames,
        "fps": round((frames - 1) / elapsed, 1),
        "step_ms_p50": round(float(np.median(steps)), 2),
        "latency_ms_p50": round(float(np.median(latencies)), 1) if latencies else None,
        "latency_ms_p95": round(float(np.percentile(latencies, 95)), 1) if latencies else None,
        "key_changes": len(latencies),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
