"""One play session: a WebSocket connection with its own rollout state and a paced frame loop.

Protocol. Client -> server, JSON text messages:
    {"type": "keys", "keys": ["w", "shift"], "seq": 12}  the keys held now (replaces the last set);
                                                         seq comes back in each frame's header
    {"type": "ack", "id": 57}                            frame 57 was drawn (flow control)
    {"type": "pause", "paused": true}                    (a JSON boolean; "false" is refused)
    {"type": "reset"}                                    restart from the current start image
    {"type": "world", "name": "pan"}                     switch world, from its default image
    {"type": "alive"}                                    nothing but "I am still here" (idle timeout)
  and binary messages: an image file (PNG, JPEG, ...) to start the current world from.
Server -> client, JSON text messages:
    {"type": "loading", "world": "doom"}                 a world is loading (no frames until "world")
    {"type": "world", "world": {...}, "start": "default" | "upload"}   a (re)start happened
    {"type": "status", "message": ...}    {"type": "error", "message": ...}   (the session goes on)
Malformed messages (not JSON, nested too deep, numbers too long, wrong types) get an "error" and
change nothing; text that is not UTF-8 breaks the WebSocket protocol itself, and the library
closes the connection (1007). A client that sends nothing for `idle_timeout` seconds (the page
sends at least an "ack" per frame and an "alive" every few seconds) is closed and its slot freed;
so is one that stops reading, once a send has waited that long.
  and binary frames: 4-byte big-endian header length, a JSON header {"id", "n", "seq", "keys",
  "step_ms", "dropped", "width", "height"}, then height*width*3 bytes of RGB.

Pacing and slow clients: frames are generated on a clock at the world's rate (never faster;
slower if the model is slower, with no burst to catch up). A frame is sent only while fewer than
MAX_IN_FLIGHT sent frames are unacknowledged; otherwise it is dropped and counted, so a slow
client sees a lower frame rate, never a growing queue. The world keeps its rate either way.

Threads: the connection's thread reads messages and only records them (held keys, flags,
commands); one generator thread owns the rollout state, runs commands between frames and steps
the world. Both send: a `websockets` connection takes whole messages from several threads. A
disconnect stops the generator and drops the state.
"""

from __future__ import annotations

import contextlib
import json
import queue
import struct
import threading
import time
from typing import Callable

import numpy as np
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.sync.server import ServerConnection

from wm_jax import actions, images

MAX_IN_FLIGHT = 2
MAX_KEYS = 16  # more keys held at once than this is not a keyboard
MAX_TEXT = 4096  # bytes; the longest real message (16 keys) is a few hundred
MAX_COUNTER = 2**53  # seq and id are counters a browser keeps in a JS number
IDLE_TIMEOUT = 60.0  # seconds without a message from the client before the session ends


class Session:
    """world_loader(name) -> World (may take seconds: loading and compiling)."""

    def __init__(self, ws: ServerConnection, world_loader: Callable, world_name: str, *, seed: int = 0,
                 fps: float | None = None, max_upload: int = images.MAX_UPLOAD_BYTES,
                 idle_timeout: float = IDLE_TIMEOUT):
        self.ws, self.load_world, self.seed, self.fps_override = ws, world_loader, seed, fps
        self.max_upload, self.idle_timeout = max_upload, idle_timeout
        self.world = self.world_name = None
        self.state = None
        self.start_image: np.ndarray | None = None  # None: the world's own
        # (held keys, their seq): one attribute, replaced whole, so the generator never pairs
        # new keys with an old seq (which would corrupt the latency the page measures).
        self.input: tuple[tuple[str, ...], int] = ((), 0)
        self.paused = False
        self.frames_sent = 0
        self.last_ack = 0
        self.dropped = 0
        self.frame_number = 0
        self.broken: OSError | None = None  # what ended the connection, when the network did
        self.commands: queue.Queue = queue.Queue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.commands.put(("world", world_name))

    # -- the connection's thread -----------------------------------------------------------------

    def run(self) -> None:
        """Serve until the connection closes; returns with the state released."""
        generator = threading.Thread(target=self._generate, name="wm-play-generator", daemon=True)
        generator.start()
        # Reads and sends alike give up after idle_timeout: a client that neither talks nor
        # reads cannot hold its slot for good. The library has no send timeout of its own and
        # writes with sendall on this socket, so a timeout on the socket bounds each send; its
        # reads wait in select() first, so the timeout never cuts a read short.
        # A client that reset the connection right after the handshake may have had its socket
        # closed by the library's reader already (EBADF here); recv then reports why it closed.
        with contextlib.suppress(OSError):
            self.ws.socket.settimeout(self.idle_timeout)
        try:
            while not self._stop.is_set():
                try:
                    message = self.ws.recv(timeout=self.idle_timeout)
                except TimeoutError:
                    self.error(f"closing: nothing heard from this page for {self.idle_timeout:g} s")
                    self.ws.close(CloseCode.GOING_AWAY, "idle")
                    break
                if isinstance(message, bytes):
                    self._on_upload(message)
                else:
                    self._on_text(message)
        except ConnectionClosed as closed:
            self._closed(closed)
        finally:
            self._stop.set()
            self._wake.set()
            generator.join(timeout=30)
            self.state = self.world = None  # free the rollout state now, not when the handler dies

    def _on_upload(self, data: bytes) -> None:
        # Decoded straight to the world's resolution: the session never holds the full bitmap.
        world = self.world
        try:
            image = images.decode(data, max_bytes=self.max_upload, fit_to=world.resolution if world else None)
        except images.ImageError as error:
            self.error(str(error))
            return
        self._command("start", image)

    def _on_text(self, text: str) -> None:
        message = _parse_message(text)
        if isinstance(message, str):
            self.error(message)
            return
        kind = message["type"]
        if kind == "keys":
            self._on_keys(message)
        elif kind == "ack":
            sent = message.get("id")
            if not _is_counter(sent):
                self.error('"ack" needs an "id": a non-negative integer')
            elif self.last_ack < sent <= self.frames_sent:
                self.last_ack = sent
        elif kind == "pause":
            paused = message.get("paused", not self.paused)
            if not isinstance(paused, bool):
                self.error(f'"paused" must be true or false, got {json.dumps(paused)[:40]}')
                return
            self.paused = paused
            self._wake.set()
        elif kind == "alive":
            pass  # receiving it was the point: the idle clock restarts
        elif kind == "reset":
            self._command("reset", None)
        elif kind == "world":
            name = message.get("name")
            if not isinstance(name, str):
                self.error('"world" needs a "name"')
            else:
                self._command("world", name)
        else:
            self.error(f"unknown message type {kind!r}")

    def _on_keys(self, message: dict) -> None:
        keys, seq = message.get("keys"), message.get("seq", 0)
        if not _is_counter(seq):
            self.error('"seq" must be a non-negative integer')
            return
        if not isinstance(keys, list) or len(keys) > MAX_KEYS or not all(isinstance(k, str) and len(k) <= 32 for k in keys):
            self.error(f'"keys" must be a list of at most {MAX_KEYS} key names')
            return
        names = []
        for key in keys:
            name = actions.canonical(key)
            if name not in actions.KEYS:
                self.error(f"unknown key {key!r}")
                return
            names.append(name)
        # Keys the world's model does not use are accepted and do nothing (World.action drops them).
        self.input = (tuple(dict.fromkeys(names)), seq)

    def _command(self, name: str, argument) -> None:
        self.commands.put((name, argument))
        self._wake.set()

    def _closed(self, closed: ConnectionClosed) -> None:
        """The connection is gone (seen by whichever thread sent or read first): stop, and keep
        the network error behind it, if any, for the server's one log line."""
        self.broken = self.broken or _network_error(closed)
        self._stop.set()

    def error(self, message: str) -> None:
        self._send_json({"type": "error", "message": message})

    def _send_json(self, message: dict) -> None:
        try:
            self.ws.send(json.dumps(message))
        except ConnectionClosed as closed:
            self._closed(closed)

    # -- the generator thread: the only code that touches the world and the state ----------------

    def _run_commands(self) -> None:
        while True:
            try:
                name, argument = self.commands.get_nowait()
            except queue.Empty:
                return
            if name == "world":
                self._switch_world(argument)
            elif name == "start":
                self.start_image = argument
                self._restart("upload")
            elif name == "reset" and self.world is not None:
                self._restart("upload" if self.start_image is not None else "default")

    def _switch_world(self, name: str) -> None:
        # The page blanks the canvas and shows progress until the "world" event: loading and
        # compiling a world takes seconds, and no frames come meanwhile.
        self._send_json({"type": "loading", "world": name})
        self._send_json({"type": "status", "message": f"loading world {name!r}…"})
        try:
            world = self.load_world(name)
        except (KeyError, ValueError, FileNotFoundError, OSError) as error:
            self.error(f"cannot load world {name!r}: {error}")
            return
        self.world, self.world_name, self.start_image = world, name, None
        self._restart("default")

    def _restart(self, start: str) -> None:
        world = self.world
        self.state = None  # drop the old state before building the new one
        self.state = world.start(self.start_image, seed=self.seed)
        self.frame_number = 0
        info = world.info.to_json(world.resolution)
        info["id"] = self.world_name
        if self.fps_override:
            info["fps"] = self.fps_override
        self._send_json({"type": "world", "world": info, "start": start})
        first = world.fit(self.start_image) if self.start_image is not None else world.start_image
        self._send_frame(first, step_ms=0.0, keys=(), seq=self.input[1], force=True)

    def _send_frame(self, frame: np.ndarray, *, step_ms: float, keys, seq: int, force: bool = False) -> None:
        if not force and self.frames_sent - self.last_ack >= MAX_IN_FLIGHT:
            self.dropped += 1
            return
        self.frames_sent += 1
        header = json.dumps({
            "id": self.frames_sent, "n": self.frame_number, "seq": seq, "keys": list(keys),
            "step_ms": round(step_ms, 2), "dropped": self.dropped, "height": frame.shape[0], "width": frame.shape[1],
        }).encode()
        try:
            self.ws.send(struct.pack("!I", len(header)) + header + np.ascontiguousarray(frame, np.uint8).tobytes())
        except ConnectionClosed as closed:
            self._closed(closed)

    def _generate(self) -> None:
        next_time = time.perf_counter()
        try:
            while not self._stop.is_set():
                self._run_commands()
                if self.state is None or self.paused:
                    self._wake.wait(0.1)
                    self._wake.clear()
                    next_time = time.perf_counter()
                    continue
                delay = next_time - time.perf_counter()
                if delay > 0:
                    if self._wake.wait(delay):  # a command or a stop arrived: handle it first
                        self._wake.clear()
                        continue
                keys, seq = self.input
                started = time.perf_counter()
                self.state, frame = self.world.step(self.state, keys)
                step_ms = (time.perf_counter() - started) * 1e3
                self.frame_number += 1
                self._send_frame(frame, step_ms=step_ms, keys=keys, seq=seq)
                interval = 1.0 / (self.fps_override or self.world.info.fps)
                # The next frame is due one interval later; if we are already late, start afresh
                # from now instead of producing a burst of frames to catch up.
                next_time = max(next_time + interval, time.perf_counter() - interval)
        except Exception as error:  # a failure here must reach the user, not vanish with the thread
            self.error(f"generation failed: {type(error).__name__}: {error}")
            self._stop.set()
            self.ws.close(CloseCode.INTERNAL_ERROR, "generation failed")


def _is_counter(value) -> bool:
    # bool is an int subclass in Python; true is not a sequence number.
    return type(value) is int and 0 <= value <= MAX_COUNTER


def _network_error(closed: ConnectionClosed) -> OSError | None:
    """The socket error (reset, broken pipe, a send that timed out) behind a closed connection;
    None when it closed by the protocol (a close frame, a limit the library enforces)."""
    cause = closed.__cause__
    return cause if isinstance(cause, OSError) else None


def _parse_message(text: str) -> dict | str:
    """A client's text message as a dict with a string "type", or the error to send back."""
    size = len(text.encode("utf-8"))
    if size > MAX_TEXT:
        return f"malformed message: {size} bytes; text messages are at most {MAX_TEXT}"
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        # ValueError covers JSONDecodeError and integers past Python's digit limit;
        # RecursionError, arrays nested thousands deep.
        return "malformed message: not JSON"
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return 'malformed message: expected an object with a "type"'
    return message
