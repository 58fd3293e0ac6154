"""The play server: one page, a few JSON endpoints and a WebSocket per player, on 127.0.0.1.

    GET /                 the page (index.html, play.js, play.css from page/)
    GET /api/worlds       {"worlds": [{"id", "name", "description"}], "default": id, "max_upload": bytes}
    GET /api/status       {"sessions", "max_sessions"}
    GET /ws               WebSocket: one play session (see session.py for the protocol)

Built on the `websockets` package's threaded server (`websockets.sync.server`): it owns the
listening socket, parses every request, performs the WebSocket handshake (with its Origin check)
and frames the messages (with its size limit), one thread per connection, which suits the
blocking loop of `Session`. The page and the JSON endpoints are answered from its
`process_request` hook rather than by a second, `http.server` one: the library has no public way
to adopt a socket whose upgrade another parser has read, and one parser means one set of limits
(request line, header count, a deadline for the request, no request bodies). The cost is one
request per connection (each answer closes it): four requests per page load, on loopback.

Safety, for a server meant for one person's browser: it binds 127.0.0.1 unless told otherwise;
when bound to loopback it answers only requests whose Host is a loopback name (a DNS-rebinding
page cannot reach it); a WebSocket must come from one of the server's own origins (no other site
may drive it; `origins`); a message may be at most `max_upload` bytes (`max_size`: a larger one
closes the connection with 1009), text messages at most session.MAX_TEXT; uploads are decoded
with pixel and decoded-byte limits, a few at a time; at most `max_sessions` sessions run at once
and later ones get a "busy" answer; a session whose page is silent for `idle_timeout` seconds is
closed, and so is one that stops reading; a request must arrive within REQUEST_TIMEOUT. A
request with a body is refused by the library's parser before anything after it is read (no
route takes one). A client that resets the connection costs one line on stderr, not a traceback.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import pathlib
import socket
import sys
import threading
from typing import Mapping

from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.sync import server as ws_server

from wm_jax import bundle, images
from wm_jax import world as wm_world
from wm_jax.serve import session as session_lib
from wm_jax.serve.session import Session

PAGE_DIR = pathlib.Path(__file__).parent / "page"
STATIC = {"/": ("index.html", "text/html; charset=utf-8"), "/play.js": ("play.js", "text/javascript; charset=utf-8"),
          "/play.css": ("play.css", "text/css; charset=utf-8")}
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
REQUEST_TIMEOUT = 30.0  # seconds for a connection to send its request (the library's open_timeout)
LOGGER = logging.getLogger("wm_jax.serve")  # the library logs through it (see _NetworkErrorsInOneLine)
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'",
}


class WorldRegistry:
    """World ids -> directories; loads (and compiles) each world once, on first use."""

    def __init__(self, entries: Mapping[str, pathlib.Path], default: str | None = None, *,
                 autoencoder_spec=None, sampler_steps: int | None = None, quantization: str | None = None,
                 sampler_method: str | None = None, eta: float | None = None, temperature: float | None = None,
                 rebuild_context: bool | None = None, memory: int | None = None):
        self.entries = dict(entries)
        self.default = default if default is not None else bundle.default_world(self.entries)
        self.load_kwargs = dict(autoencoder_spec=autoencoder_spec, sampler_steps=sampler_steps, quantization=quantization,
                                sampler_method=sampler_method, eta=eta, temperature=temperature, rebuild_context=rebuild_context,
                                memory=memory)
        self._loaded: dict[str, wm_world.World] = {}
        self._locks = {name: threading.Lock() for name in self.entries}

    def describe(self) -> list[dict]:
        out = []
        for name, path in self.entries.items():
            meta_file = pathlib.Path(path) / bundle.INFO_FILE
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


class PlayServer:
    """A bound server. serve_forever() in one thread; stop() from another ends every session and
    returns once their threads have finished (the library's handler threads are not daemons)."""

    def __init__(self, sock: socket.socket, registry: WorldRegistry, *, max_sessions: int = 4, seed: int = 0,
                 fps: float | None = None, max_upload: int = images.MAX_UPLOAD_BYTES,
                 idle_timeout: float = session_lib.IDLE_TIMEOUT):
        self.registry, self.max_sessions, self.seed, self.fps, self.max_upload = registry, max_sessions, seed, fps, max_upload
        self.idle_timeout = idle_timeout
        self.sessions: set[Session] = set()
        self.sessions_lock = threading.Lock()
        self.server_address = sock.getsockname()
        host, port = self.server_address[:2]
        self.loopback_only = _is_loopback(host)
        self.origins = _origins(host, port)
        self._server = ws_server.serve(
            self._play, sock=sock, process_request=self._http, origins=[None, *self.origins],
            max_size=max_upload,  # the largest upload; text messages are capped lower by the session
            compression=None,  # frames are small and sent on loopback: deflate would only cost CPU
            # The session's idle timeout decides when a page is gone (and a send that cannot
            # proceed fails); the library's keepalive would log a traceback for a client that
            # stalls past its pong deadline.
            ping_interval=None,
            open_timeout=REQUEST_TIMEOUT, server_header="wm-play", logger=LOGGER)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        """Stop accepting, close every connection (1001, going away), wait for their threads."""
        self._server.shutdown()

    server_close = stop  # the name socketserver gives it (`wm play` calls it on Ctrl+C)

    # -- HTTP: every request but the WebSocket upgrade of /ws ------------------------------------

    def _http(self, connection: ws_server.ServerConnection, request: Request) -> Response | None:
        """An answer, or None to let the library perform the WebSocket handshake (it checks the
        Upgrade headers, the version and the Origin, and answers 4xx itself)."""
        if not self._host_ok(request):
            return _json(connection, 403, {"error": "this server answers only to loopback host names"})
        if request.method not in ("GET", "HEAD"):
            return _json(connection, 405, {"error": "uploads go over the WebSocket (/ws) as binary messages"})
        path = request.path.split("?", 1)[0]
        if path == "/ws":
            return None
        response = self._route(connection, path)
        if request.method == "HEAD":
            response.body = b""  # Content-Length still says what a GET would get
        return response

    def _route(self, connection, path: str) -> Response:
        if path in STATIC:
            name, content_type = STATIC[path]
            return _answer(connection, 200, (PAGE_DIR / name).read_text(encoding="utf-8"), content_type)
        if path == "/api/worlds":
            return _json(connection, 200, {"worlds": self.registry.describe(), "default": self.registry.default,
                                           "max_upload": self.max_upload})
        if path == "/api/status":
            with self.sessions_lock:
                n = len(self.sessions)
            return _json(connection, 200, {"sessions": n, "max_sessions": self.max_sessions})
        return _json(connection, 404, {"error": f"no such page: {path}"})

    def _host_ok(self, request: Request) -> bool:
        if not self.loopback_only:
            return True
        hosts = request.headers.get_all("Host")
        if len(hosts) != 1:
            return False
        host = hosts[0].lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return name in LOOPBACK_NAMES or _is_loopback(name)

    # -- WebSocket: one session per connection ---------------------------------------------------

    def _play(self, connection: ws_server.ServerConnection) -> None:
        address = connection.remote_address  # now: a broken socket no longer knows its peer
        session = self._admit(connection)
        if session is None:
            _refuse_busy(connection, self.max_sessions)
            return
        try:
            session.run()
        finally:
            with self.sessions_lock:
                self.sessions.discard(session)
        if session.broken is not None:
            log_connection_end(address, session.broken)

    def _admit(self, connection) -> Session | None:
        with self.sessions_lock:
            if len(self.sessions) >= self.max_sessions:
                return None
            session = Session(connection, self.registry.load, self.registry.default, seed=self.seed, fps=self.fps,
                              max_upload=self.max_upload, idle_timeout=self.idle_timeout)
            self.sessions.add(session)
            return session


def _refuse_busy(connection, max_sessions: int) -> None:
    message = {"type": "busy", "message": f"the server is busy: {max_sessions} sessions are playing already; "
                                          "try again later"}
    try:
        connection.send(json.dumps(message))
        connection.close(CloseCode.TRY_AGAIN_LATER, "busy")
    except ConnectionClosed:
        pass  # it left first


class _NetworkErrorsInOneLine(logging.Filter):
    """The library logs a connection that fails inside its own threads with a traceback. A
    vanished or stalled client is routine here: one line, as for a reset (OSError), or none
    for data that reached a connection just closed, e.g. after a send to a stalled client timed
    out (EOFError "stream ended"): the session's own line reports that end. Other errors keep
    their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, EOFError):
            return False
        if isinstance(error, OSError):
            record.msg, record.args = f"wm play: {record.getMessage()}: {type(error).__name__}: {error}", ()
            record.exc_info = record.exc_text = None
        return True


LOGGER.addFilter(_NetworkErrorsInOneLine())


def log_connection_end(address, error: BaseException) -> None:
    """A client that vanished (reset, broken pipe, stopped reading) is routine: one line."""
    host, port = address[:2]
    print(f"wm play: connection from {host}:{port} ended: {type(error).__name__}: {error}", file=sys.stderr)


def _answer(connection, status: int, text: str, content_type: str) -> Response:
    response = connection.respond(status, text)
    del response.headers["Content-Type"]  # Headers is a multi-dict: setting a name adds a value
    response.headers["Content-Type"] = content_type
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


def _json(connection, status: int, value) -> Response:
    return _answer(connection, status, json.dumps(value), "application/json")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def _origins(host: str, port: int) -> list[str]:
    """The origins a page of this server has: loopback names, the bound address, and for a
    wildcard bind (0.0.0.0, ::) the names and addresses this machine knows for itself. A browser
    that reaches a wildcard-bound server under another name is refused (it says which origin)."""
    names = list(LOOPBACK_NAMES)
    if not _is_loopback(host):
        address = ipaddress.ip_address(host)
        if address.is_unspecified:
            names += _own_names()
        else:
            names.append(f"[{host}]" if address.version == 6 else host)
    suffix = "" if port == 80 else f":{port}"
    return list(dict.fromkeys(f"http://{name}{suffix}" for name in names))


def _own_names() -> list[str]:
    names = [socket.gethostname(), socket.getfqdn()]
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None)
    except OSError:
        infos = []
    for family, *_, sockaddr in infos:
        names.append(f"[{sockaddr[0]}]" if family == socket.AF_INET6 else sockaddr[0])
    return [name.lower() for name in names if name]


def serve(registry: WorldRegistry, host: str = "127.0.0.1", port: int = 8000, **options) -> PlayServer:
    """A bound server (port 0 picks a free one); call serve_forever() on it, or run it in a thread.
    A port in use raises OSError (EADDRINUSE), before anything else starts."""
    if registry.default is None:
        raise ValueError("no world to serve")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # an IPv6 address such as ::1
    sock = socket.create_server((host, port), family=family)
    try:
        return PlayServer(sock, registry, **options)
    except BaseException:
        sock.close()
        raise
