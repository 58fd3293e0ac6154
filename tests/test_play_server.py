"""The play server without a browser: HTTP routes, and WebSocket sessions driven by the
`websockets` package's own (sync) client."""

import base64
import contextlib
import errno
import io
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib

import numpy as np
import pytest
from PIL import Image
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from websockets.frames import CloseCode
from websockets.sync.client import connect

from wm_jax.serve import server, session

MAX_UPLOAD = 200_000


@pytest.fixture(scope="module")
def play_server(demo_world_dir):
    registry = server.WorldRegistry({"demo": demo_world_dir})
    httpd = server.serve(registry, "127.0.0.1", 0, max_sessions=2, fps=60, max_upload=MAX_UPLOAD)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.stop()
    thread.join(timeout=10)


def _connect(httpd, **options):
    """A `websockets` client on the server's /ws (no Origin header, like a non-browser client),
    to be used as a context manager (the library's way: it closes the connection on exit)."""
    host, port = httpd.server_address[:2]
    options = {"open_timeout": 60, "max_size": None, "compression": None, **options}
    return connect(f"ws://{host}:{port}/ws", **options)


class Client:
    """A player without a page: collects events, acknowledges frames like the page does."""

    def __init__(self, httpd, ack=True):
        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(_connect(httpd))
        self.ack, self.events = ack, []

    def _next(self, timeout=60):
        data = self.ws.recv(timeout=timeout)
        if isinstance(data, str):
            self.events.append(json.loads(data))
            return self.events[-1], None
        n = struct.unpack("!I", data[:4])[0]
        header = json.loads(data[4 : 4 + n])
        pixels = np.frombuffer(data[4 + n :], np.uint8).reshape(header["height"], header["width"], 3)
        if self.ack:
            self.send(type="ack", id=header["id"])
        return header, pixels

    def frame(self, where=lambda header: True, timeout=60):
        while True:
            header, pixels = self._next(timeout)
            if pixels is not None and where(header):
                return header, pixels

    def event(self, kind):
        for event in self.events:
            if event["type"] == kind:
                self.events.remove(event)
                return event
        while True:
            message, pixels = self._next()
            if pixels is None and message["type"] == kind:
                self.events.remove(message)
                return message

    def send(self, **message):
        self.ws.send(json.dumps(message))

    def close(self):
        self._stack.close()


def _get(httpd, path, headers=None):
    request = urllib.request.Request(httpd.url.rstrip("/") + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def _png(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_http_routes(play_server):
    status, headers, body = _get(play_server, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"<canvas" in body
    for path in ("/play.js", "/play.css"):
        assert _get(play_server, path)[0] == 200
    status, _, body = _get(play_server, "/api/worlds")
    answer = json.loads(body)
    assert status == 200 and answer["default"] == "demo" and answer["worlds"][0]["id"] == "demo"
    assert answer["max_upload"] == MAX_UPLOAD
    assert json.loads(_get(play_server, "/api/status")[2])["max_sessions"] == 2
    assert _get(play_server, "/../etc/passwd")[0] == 404
    assert _get(play_server, "/ws")[0] == 426  # not an upgrade: the library says "Upgrade Required"
    # DNS rebinding: a page served from another name must not reach the server.
    assert _get(play_server, "/api/worlds", {"Host": "evil.example:80"})[0] == 403
    request = urllib.request.Request(play_server.url, method="POST")  # no body (one with a body: below)
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=30)
    assert error.value.code == 405


def test_cross_origin_websocket_is_refused(play_server):
    host, port = play_server.server_address[:2]
    with pytest.raises(InvalidStatus) as refused, _connect(play_server, origin="http://evil.example"):
        pass
    assert refused.value.response.status_code == 403
    with _connect(play_server, origin=f"http://{host}:{port}") as ws:
        assert json.loads(ws.recv(timeout=60))["type"] == "loading"


def test_session_plays_keys_and_recovers_from_bad_input(play_server):
    client = Client(play_server)
    world = client.event("world")["world"]
    assert world["id"] == "demo" and (world["height"], world["width"]) == (64, 64) and world["fps"] == 60
    header, first = client.frame()
    assert header["n"] == 0 and first.shape == (64, 64, 3)

    client.send(type="keys", keys=["KeyW", "Shift"], seq=7)  # browser spellings
    header, _ = client.frame(lambda h: h["seq"] == 7)
    assert header["keys"] == ["w", "shift"] and header["n"] > 0 and header["step_ms"] > 0
    frames = [client.frame()[1] for _ in range(3)]
    assert any((a != b).any() for a, b in zip(frames, frames[1:])), "frames must change"

    # Bad input gets an error event and the session carries on.
    client.ws.send("{not json")
    assert "not JSON" in client.event("error")["message"]
    client.send(type="fly")
    assert "unknown message type" in client.event("error")["message"]
    client.send(type="keys", keys=["w", "hyperspace"], seq=8)
    assert "unknown key 'hyperspace'" in client.event("error")["message"]
    client.send(type="keys", keys="w")
    assert "list" in client.event("error")["message"]
    client.ws.send(b"GIF89a but not really")
    assert "image" in client.event("error")["message"]
    client.send(type="world", name="atlantis")
    assert "atlantis" in client.event("error")["message"]
    header, _ = client.frame(lambda h: h["n"] > 0)
    assert header["keys"] == ["w", "shift"]  # the last good keys still hold

    # An upload of any size restarts the world from it, center-cropped and resized.
    image = np.zeros((90, 160, 3), np.uint8)
    image[:, 35:125] = (250, 20, 20)  # the centred square is red
    client.ws.send(_png(image))
    assert client.event("world")["start"] == "upload"
    header, start = client.frame(lambda h: h["n"] == 0)
    assert start[..., 0].min() > 200 and start[..., 2].max() < 40

    client.send(type="reset")
    assert client.event("world")["start"] == "upload"
    client.frame(lambda h: h["n"] == 0)

    client.send(type="pause", paused=True)
    time.sleep(0.3)
    with pytest.raises(TimeoutError):
        while True:  # drain what was in flight; then nothing more may come
            client.frame(timeout=0.5)
    client.close()


def test_an_oversized_message_closes_with_1009_and_frees_the_slot(play_server):
    # The page checks a file's size against /api/worlds' max_upload before sending it, so only
    # another client sends more: the library's size limit closes that connection (1009).
    assert _wait_for_no_sessions(play_server) == 0
    client = Client(play_server)
    client.event("world")
    client.ws.send(b"\0" * (MAX_UPLOAD + 1))
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            client.frame()
    assert closed.value.rcvd.code == CloseCode.MESSAGE_TOO_BIG and "exceeds limit" in closed.value.rcvd.reason
    assert _wait_for_no_sessions(play_server) == 0


def test_slow_client_gets_dropped_frames_not_a_queue(play_server):
    client = Client(play_server, ack=False)
    client.event("world")
    client.send(type="keys", keys=["d"], seq=1)
    received = [client.frame()[0] for _ in range(session.MAX_IN_FLIGHT)]
    time.sleep(0.5)  # 30 frames' time at 60 frames/s, none acknowledged
    client.send(type="ack", id=received[-1]["id"])
    header, _ = client.frame()
    assert header["id"] == received[-1]["id"] + 1, "nothing may queue up while the client is behind"
    assert header["dropped"] >= 10 and header["n"] > 10
    client.close()


def _wait_for_no_sessions(server, seconds=30):
    deadline = time.time() + seconds
    while json.loads(_get(server, "/api/status")[2])["sessions"] and time.time() < deadline:
        time.sleep(0.05)
    return json.loads(_get(server, "/api/status")[2])["sessions"]


def test_busy_and_disconnect_frees_the_session(play_server):
    # Earlier tests' clients may still be winding down on a loaded machine: start from none.
    assert _wait_for_no_sessions(play_server) == 0
    first, second = Client(play_server), Client(play_server)
    first.event("world"), second.event("world")
    third = Client(play_server)
    busy = third.event("busy")
    assert "busy" in busy["message"]
    with pytest.raises(ConnectionClosed) as closed:
        third.ws.recv()
    assert closed.value.rcvd.code == CloseCode.TRY_AGAIN_LATER  # the page shows no "disconnected" for it
    first.close(), second.close()
    assert _wait_for_no_sessions(play_server) == 0
    again = Client(play_server)
    assert again.event("world")["world"]["id"] == "demo"
    again.close()


# -- hostile input (issue 18): each probe bounded, on loopback, and it stops by itself -------------


def _png_16bit_gray(width, height) -> bytes:
    """A valid 16-bit grayscale PNG of zeros, compressed row by row (never held whole): 6300x6300
    is 77 kB of file and 79 MB of 16-bit bitmap."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    compressor, row = zlib.compressobj(9), b"\0" * (1 + 2 * width)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_malformed_messages_get_an_error_and_the_session_goes_on(play_server):
    client = Client(play_server)
    client.event("world")
    client.send(type="keys", keys=["d"], seq=1)
    client.frame(lambda h: h["seq"] == 1)
    hostile = [
        ("[" * 100_000, "bytes"),  # was an uncaught RecursionError
        ("[" * 4000, "not JSON"),  # short, and still too deep for the parser
        ('{"type": "keys", "keys": [], "seq": ' + "9" * 5000 + "}", "bytes"),  # was ValueError (4300 digits)
        ('{"type": "keys", "keys": ["w"], "seq": 1e400}', "seq"),
        ('{"type": "keys", "keys": ["w"], "seq": true}', "seq"),
        ('{"type": "keys", "keys": ["w"], "seq": -1}', "seq"),
        ('{"type": "pause", "paused": "false"}', "true or false"),  # was truthy: paused
        ('{"type": "pause", "paused": 0}', "true or false"),
        ('{"type": "ack", "id": "3"}', "id"),
        ('"keys"', "object"),
    ]
    for text, answer in hostile:
        client.ws.send(text)
        assert answer in client.event("error")["message"], text[:60]
    # A paused or dead session would time out here, not hang.
    header, _ = client.frame(lambda h: h["n"] > 0, timeout=10)
    assert header["keys"] == ["d"] and header["seq"] == 1  # nothing above changed the input
    client.send(type="alive")
    client.send(type="pause", paused=False)
    client.frame()
    assert not [e for e in client.events if e["type"] == "error"]
    client.close()


def test_world_switch_announces_loading_before_the_world(play_server):
    client = Client(play_server)
    client.event("world")
    client.events.clear()
    client.send(type="world", name="demo")
    client.event("world")
    # The page blanks the canvas on "loading" and shows the world again on "world".
    assert [e for e in client.events if e["type"] == "loading"] == [{"type": "loading", "world": "demo"}]
    client.close()


def test_silent_clients_are_closed_and_their_slots_freed(play_server):
    assert _wait_for_no_sessions(play_server) == 0
    play_server.idle_timeout = 1.0
    with contextlib.ExitStack() as stack:
        try:
            # Connect, then neither read nor send: before, these held every slot for good.
            silent = [stack.enter_context(_connect(play_server, open_timeout=30))
                      for _ in range(play_server.max_sessions)]
            time.sleep(0.3)
            assert json.loads(_get(play_server, "/api/status")[2])["sessions"] == play_server.max_sessions
            assert _wait_for_no_sessions(play_server, seconds=15) == 0
        finally:
            play_server.idle_timeout = session.IDLE_TIMEOUT
        client = Client(play_server)
        assert client.event("world")["world"]["id"] == "demo"
        client.close()
        for ws in silent:  # the server said why before closing
            events = []
            with pytest.raises(ConnectionClosed):
                for _ in range(10):
                    data = ws.recv(timeout=30)
                    if isinstance(data, str):
                        events.append(json.loads(data))
            assert any("nothing heard" in e.get("message", "") for e in events)


def test_a_client_that_stops_reading_is_closed_and_its_slot_freed(play_server, capsys):
    """It keeps acknowledging frames it never reads (so frames keep coming and the socket's
    buffers fill): the send that cannot proceed fails after idle_timeout, the slot is freed,
    and the server logs one line."""
    assert _wait_for_no_sessions(play_server) == 0
    play_server.registry.load("demo")  # loaded before the 1-s idle clock runs
    host, port = play_server.server_address[:2]
    sock = socket.create_connection((host, port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # little room: the buffers fill fast
    play_server.idle_timeout, play_server.fps = 1.0, 1000.0
    try:
        # max_queue=1: the client library stops reading the socket once one message waits.
        with _connect(play_server, sock=sock, max_queue=1, ping_interval=None) as ws:
            while not isinstance(ws.recv(timeout=60), bytes):
                pass
            (player,) = play_server.sessions
            deadline = time.time() + 30
            with contextlib.suppress(ConnectionClosed):
                while play_server.sessions and time.time() < deadline:
                    # Acknowledges (peeking at the server, in this process) what it never read.
                    ws.send(json.dumps({"type": "ack", "id": player.frames_sent}))
                    time.sleep(0.002)
    finally:
        play_server.idle_timeout, play_server.fps = session.IDLE_TIMEOUT, 60
    assert _wait_for_no_sessions(play_server) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ended: TimeoutError" in err, err


def test_an_unread_post_body_is_not_parsed_as_a_request(play_server):
    host, port = play_server.server_address[:2]
    smuggled = f"GET /api/status HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(smuggled)}\r\n\r\n".encode()
                     + smuggled)
        answer = b""
        while chunk := sock.recv(65536):  # the server closes the connection: this loop ends
            answer += chunk
    # The library refuses a request with a body outright (no route takes one) and reads nothing
    # after it as a request: no answer for the smuggled GET, whose JSON would name "sessions".
    assert answer.count(b"HTTP/1.1 ") <= 1 and b"sessions" not in answer


def _raw_websocket(httpd):
    """A player's socket on /ws with the handshake done by hand, and the first bytes the session
    sent after it (its "world" event) read: a socket no library thread reads or closes."""
    host, port = httpd.server_address[:2]
    sock = socket.create_connection((host, port), timeout=60)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    received = b""
    while b"\r\n\r\n" not in received or received.endswith(b"\r\n\r\n"):
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection during the handshake: {received!r}"
        received += chunk
    assert received.startswith(b"HTTP/1.1 101 "), received
    return sock


def test_a_session_whose_socket_the_library_closed_already_ends_with_the_reset():
    # The race behind a reset right after the handshake, made certain: the library's reader saw
    # the reset and closed the socket before the session's handler touched it.
    reset = ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
    closed = ConnectionClosedError(None, None)
    closed.__cause__ = reset

    class ClosedSocket:
        def settimeout(self, _):
            raise OSError(errno.EBADF, "Bad file descriptor")

    class ClosedConnection:
        socket = ClosedSocket()

        def recv(self, timeout=None):
            raise closed

        def send(self, _):
            raise closed

    def no_world(name):
        raise KeyError(name)

    player = session.Session(ClosedConnection(), no_world, "any")
    player.run()
    assert player.broken is reset


def test_a_reset_connection_logs_one_line(play_server, capsys):
    assert _wait_for_no_sessions(play_server) == 0
    # A raw socket: closing one that the library's reader thread also holds races with that thread
    # (it once ended the session with EBADF instead of a reset).
    sock = _raw_websocket(play_server)
    port = sock.getsockname()[1]
    # SO_LINGER 0: closing sends a TCP reset instead of a FIN, as a crashed or killed client does.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    err, deadline = "", time.time() + 30
    while f":{port} ended" not in err and time.time() < deadline:
        time.sleep(0.05)
        err += capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert re.search(rf"^wm play: connection from 127\.0\.0\.1:{port} ended: (ConnectionResetError|BrokenPipeError)", err)
    assert _wait_for_no_sessions(play_server) == 0


def test_a_16bit_upload_decodes_small_and_memory_returns_after_the_sessions(play_server):
    bomb = _png_16bit_gray(6300, 6300)
    assert len(bomb) < MAX_UPLOAD

    def upload_and_close(count):
        clients = [Client(play_server) for _ in range(count)]
        for client in clients:
            client.event("world")
            client.ws.send(bomb)
        for client in clients:
            assert client.event("world")["start"] == "upload"
            _, start = client.frame(lambda h: h["n"] == 0)
            assert start.shape == (64, 64, 3) and start.max() == 0
            client.close()
        assert _wait_for_no_sessions(play_server) == 0

    assert _wait_for_no_sessions(play_server) == 0
    upload_and_close(1)  # once first, so what stays loaded for good (decoders, caches) is in the baseline
    baseline = _rss_bytes()
    for _ in range(2):
        upload_and_close(play_server.max_sessions)
    grown = (_rss_bytes() - baseline) / 2**20
    # Before: 1 GB peak per decode (float64 of the whole bitmap), and 1.3 GB kept after the sessions.
    assert grown < 120, f"RSS grew {grown:.0f} MiB over its baseline after the sessions ended"


def test_a_16bit_upload_peaks_at_a_fraction_of_the_float_bitmap():
    """In a fresh process, so the peak (ru_maxrss) is this decode's alone."""
    code = (
        "import resource, sys; sys.path.insert(0, 'tests')\n"
        "from test_play_server import _png_16bit_gray\n"
        "from wm_jax import images\n"
        "data = _png_16bit_gray(6300, 6300)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "assert images.decode(data, fit_to=(64, 64)).shape == (64, 64, 3)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    peak_mib = int(result.stdout.split()[-1])
    assert peak_mib < 250, f"decoding the 16-bit upload took {peak_mib} MiB at its peak (79 MiB of 16-bit pixels)"


def test_no_world_key_needs_a_modifier_the_browser_keeps():
    from wm_jax import actions
    from wm_jax import bundle

    assert actions.play_bindings(["w", "ctrl", "f", "alt", "shift"]) == {
        "w": "w", "ctrl": "space", "f": "f", "alt": "r", "shift": "shift"}
    # doom fires on the model's "ctrl" (its action space keeps the name); the player presses f.
    info, *_ = bundle.read_bundle(bundle.SHIPPED_DIR / "doom")
    keys = {k["key"]: k["press"] for k in info.to_json((64, 64))["keys"]}
    assert keys["ctrl"] == "f" and keys["w"] == "w"
    assert not set(keys.values()) & set(actions.BROWSER_RESERVED)
    assert len(set(keys.values())) == len(keys)  # one key, one action
    # The page binds what the world says, and says so next to the keys.
    page = (server.PAGE_DIR / "play.js").read_text()
    assert "k.press" in page and 'id="key-note"' in (server.PAGE_DIR / "index.html").read_text()
