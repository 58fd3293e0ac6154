"""The play server: one page, a few JSON endpoints and a WebSocket per player, on 127.0.0.1.

    GET /                 the page (index.html, play.js, play.css from page/)
    GET /api/worlds       {"worlds": [{"id", "name", "description"}], "default": id, "max_upload": bytes}
    GET /api/status       {"sessions", "max_sessions", "frames"}
    GET /ws               WebSocket upgrade: one play session (see session.py for the protocol)

Standard library only (`http.server`, one thread per connection). Every session steps its own
state through the shared, immutable World objects, which JAX allows from many threads.

Safety, for a server meant for one person's browser: it binds 127.0.0.1 unless told otherwise;
when bound to loopback it answers only requests whose Host is a loopback name (a DNS-rebinding
page cannot reach it); a WebSocket must come from the page's own origin (no other site may drive
it); uploads are size-limited and decoded with pixel and decoded-byte limits, a few at a time; at
most `max_sessions` sessions run at once and later ones get a "busy" answer; a session whose page
is silent for `idle_timeout` seconds is closed, and an HTTP request must arrive within
REQUEST_TIMEOUT. A request body is never read, so a request that has one ends its connection
(its bytes must not be taken for the next request). A client that resets the connection costs
one line on stderr, not a traceback.
"""

from __future__ import annotations

import http.server
import ipaddress
import json
import pathlib
import socket
import sys
import threading
from typing import Mapping

from wm_jax import images
from wm_jax import world as wm_world
from wm_jax.serve import session as session_lib
from wm_jax.serve import websocket
from wm_jax.serve.session import Session

PAGE_DIR = pathlib.Path(__file__).parent / "page"
STATIC = {"/": ("index.html", "text/html; charset=utf-8"), "/play.js": ("play.js", "text/javascript; charset=utf-8"),
          "/play.css": ("play.css", "text/css; charset=utf-8")}
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
REQUEST_TIMEOUT = 30.0  # seconds for a connection to send its request (and for each read after)


class WorldRegistry:
    """World ids -> directories; loads (and compiles) each world once, on first use."""

    def __init__(self, entries: Mapping[str, pathlib.Path], default: str | None = None, *,
                 autoencoder_spec=None, sampler_steps: int | None = None, quantization: str | None = None,
                 sampler_method: str | None = None, eta: float | None = None):
        self.entries = dict(entries)
        self.default = default if default is not None else wm_world.default_world(self.entries)
        self.load_kwargs = dict(autoencoder_spec=autoencoder_spec, sampler_steps=sampler_steps, quantization=quantization,
                                sampler_method=sampler_method, eta=eta)
        self._loaded: dict[str, wm_world.World] = {}
        self._locks = {name: threading.Lock() for name in self.entries}

    def describe(self) -> list[dict]:
        out = []
        for name, path in self.entries.items():
            meta_file = pathlib.Path(path) / wm_world.INFO_FILE
            meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
            out.append({"id": name, "name": meta.get("name", name), "description": meta.get("description", str(path))})
        return out

    def load(self, name: str) -> wm_world.World:
        if name not in self.entries:
            raise KeyError(f"unknown world {name!r}; available: {', '.join(self.entries) or 'none'}")
        with self._locks[name]:  # two sessions asking at once load it once
            if name not in self._loaded:
                loaded = wm_world.load_world(self.entries[name], **self.load_kwargs)
                loaded.warmup()
                self._loaded[name] = loaded
            return self._loaded[name]


class PlayServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, registry: WorldRegistry, *, max_sessions: int = 4, seed: int = 0,
                 fps: float | None = None, max_upload: int = images.MAX_UPLOAD_BYTES,
                 idle_timeout: float = session_lib.IDLE_TIMEOUT):
        super().__init__(address, PlayHandler)
        self.registry, self.max_sessions, self.seed, self.fps, self.max_upload = registry, max_sessions, seed, fps, max_upload
        self.idle_timeout = idle_timeout
        self.sessions: set[Session] = set()
        self.sessions_lock = threading.Lock()
        host = address[0]
        self.loopback_only = host in ("localhost",) or _is_loopback(host)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    def handle_error(self, request, client_address) -> None:
        """A client that vanished mid-request is routine: one line. Anything else is a bug: traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            host, port = client_address[:2]
            print(f"wm play: connection from {host}:{port} ended: {type(error).__name__}: {error}", file=sys.stderr)
        else:
            super().handle_error(request, client_address)

    def stop(self) -> None:
        """Stop accepting, end every session, close the socket."""
        self.shutdown()
        with self.sessions_lock:
            sessions = list(self.sessions)
        for session in sessions:
            session.stop()
        self.server_close()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class PlayHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # browsers refuse a WebSocket upgrade answered in HTTP/1.0
    server: PlayServer
    server_version = "wm-play"
    timeout = REQUEST_TIMEOUT  # applied to the socket before the request line is read

    def log_message(self, format, *args):  # one line per request is noise for a game loop
        pass

    # -- plumbing --------------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy",
                         "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def _host_ok(self) -> bool:
        if not self.server.loopback_only:
            return True
        host = (self.headers.get("Host") or "").lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return name in LOOPBACK_NAMES or _is_loopback(name)

    # -- routes ----------------------------------------------------------------------------------

    def _refuse_body(self) -> None:
        """No route reads a body; one left unread would be parsed as the next request, so a
        request that brings one ends the connection after its answer."""
        if self.headers.get("Transfer-Encoding") or (self.headers.get("Content-Length") or "0").strip() != "0":
            self.close_connection = True

    def do_GET(self) -> None:
        self._refuse_body()
        if not self._host_ok():
            self._json(403, {"error": "this server answers only to loopback host names"})
            return
        path = self.path.split("?", 1)[0]
        if path == "/ws":
            self._websocket()
        elif path in STATIC:
            name, content_type = STATIC[path]
            self._send(200, (PAGE_DIR / name).read_bytes(), content_type)
        elif path == "/api/worlds":
            self._json(200, {"worlds": self.server.registry.describe(), "default": self.server.registry.default,
                             "max_upload": self.server.max_upload})
        elif path == "/api/status":
            with self.server.sessions_lock:
                n = len(self.server.sessions)
            self._json(200, {"sessions": n, "max_sessions": self.server.max_sessions})
        else:
            self._json(404, {"error": f"no such page: {path}"})

    do_HEAD = do_GET

    def do_POST(self) -> None:
        self._refuse_body()
        self._json(405, {"error": "uploads go over the WebSocket (/ws) as binary messages"})

    def _websocket(self) -> None:
        headers = self.headers
        key = headers.get("Sec-WebSocket-Key")
        if (headers.get("Upgrade") or "").lower() != "websocket" or not key or headers.get("Sec-WebSocket-Version") != "13":
            self._json(400, {"error": "expected a WebSocket upgrade (version 13)"})
            return
        origin = headers.get("Origin")
        if origin is not None and origin.rstrip("/") != f"http://{headers.get('Host', '')}":
            # Another web site's script may not drive this server from the user's browser.
            self._json(403, {"error": f"WebSocket from origin {origin!r} refused"})
            return
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", websocket.accept_key(key))
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True  # after the session the socket is not HTTP any more
        ws = websocket.WebSocket(self.connection, self.rfile, max_message=self.server.max_upload)
        server = self.server
        with server.sessions_lock:
            busy = len(server.sessions) >= server.max_sessions
            if not busy:
                session = Session(ws, server.registry.load, server.registry.default, seed=server.seed,
                                  fps=server.fps, max_upload=server.max_upload, idle_timeout=server.idle_timeout)
                server.sessions.add(session)
        if busy:
            ws.send_text(json.dumps({"type": "busy", "message": f"the server is busy: {server.max_sessions} sessions "
                                     "are playing already; try again later"}))
            ws.close(websocket.TRY_AGAIN_LATER, "busy")
            return
        try:
            session.run()
        finally:
            with server.sessions_lock:
                server.sessions.discard(session)


def serve(registry: WorldRegistry, host: str = "127.0.0.1", port: int = 8000, **options) -> PlayServer:
    """A bound server (port 0 picks a free one); call serve_forever() on it, or run it in a thread."""
    if registry.default is None:
        raise ValueError("no world to serve")
    if ":" in host:  # an IPv6 address such as ::1
        ipv6 = type("PlayServer6", (PlayServer,), {"address_family": socket.AF_INET6})
        return ipv6((host, port), registry, **options)
    return PlayServer((host, port), registry, **options)
