"""A small RFC 6455 WebSocket endpoint over any socket, standard library only.

Why not a library: the play server is `http.server` (threads, one per connection), and a
WebSocket on top of it needs only the handshake and the framing below: text and binary
messages, fragmentation, ping/pong and close. No extensions (no compression) are negotiated.

The server side reads masked frames and writes unmasked ones; `connect` makes the client side
(masked writes) for tests and benchmarks. Sends are serialised by a lock, so two threads of a
session (the reader and the frame generator) may both send.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import threading

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0

# Close codes (RFC 6455 section 7.4.1).
NORMAL, GOING_AWAY, PROTOCOL_ERROR, TOO_BIG, TRY_AGAIN_LATER = 1000, 1001, 1002, 1009, 1013


class Closed(Exception):
    """The connection is closed (by the peer, by us, or by a broken socket)."""


class TimedOut(Closed):
    """Nothing arrived within the socket's timeout; the stream may be mid-frame, so it is done."""


class MessageTooBig(Exception):
    """A message exceeded the limit; its bytes were read and dropped, the connection is fine."""

    def __init__(self, size: int, limit: int):
        super().__init__(f"message of {size} bytes exceeds the limit of {limit} bytes")
        self.size, self.limit = size, limit


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


class WebSocket:
    """One open connection. `reader` is a buffered binary file over the socket (it may already
    hold bytes that arrived with the handshake); `sock` is used for writing."""

    def __init__(self, sock: socket.socket, reader, *, max_message: int, client: bool = False):
        self.sock, self.reader, self.max_message, self.client = sock, reader, max_message, client
        self._send_lock = threading.Lock()
        self.closed = False

    # -- reading ---------------------------------------------------------------------------------

    def _read_exact(self, n: int) -> bytes:
        try:
            data = self.reader.read(n) if n else b""
        except TimeoutError:  # reading is over, but a last message (why) may still be sent
            raise TimedOut("no data within the timeout") from None
        except OSError as error:  # a reset or a shut-down socket: the same as a close
            self.closed = True
            raise Closed(str(error)) from None
        if len(data) != n:
            self.closed = True
            raise Closed("connection closed by peer")
        return data

    def _read_frame(self) -> tuple[bool, int, int, bytes | None]:
        """(fin, opcode, length, payload); payload is None when the frame is too big to keep."""
        b0, b1 = self._read_exact(2)
        fin, opcode, masked, length = bool(b0 & 0x80), b0 & 0x0F, bool(b1 & 0x80), b1 & 0x7F
        if b0 & 0x70:
            self._fail(PROTOCOL_ERROR, "reserved bits set (no extension was negotiated)")
        if masked == self.client:  # RFC 6455 5.1: clients mask every frame, servers none
            self._fail(PROTOCOL_ERROR, "frame masking is wrong for this side")
        if length == 126:
            (length,) = struct.unpack("!H", self._read_exact(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read_exact(8))
        if opcode >= 0x8 and (length > 125 or not fin):
            self._fail(PROTOCOL_ERROR, "control frames must be short and unfragmented")
        mask = self._read_exact(4) if masked else None
        if length > self.max_message:
            self._discard(length)
            return fin, opcode, length, None
        payload = self._read_exact(length)
        if mask:
            payload = _unmask(payload, mask)
        return fin, opcode, length, payload

    def _discard(self, length: int) -> None:
        while length:
            length -= len(self._read_exact(min(length, 1 << 16)))

    def recv(self) -> tuple[int, bytes]:
        """The next complete message: (TEXT or BINARY, payload). Answers pings, handles close.

        Raises Closed when the connection ends and MessageTooBig (after dropping the message's
        bytes, so the connection stays usable) when a message exceeds `max_message`.
        """
        parts: list[bytes] = []
        opcode_first, size, too_big = None, 0, False
        while True:
            fin, opcode, length, payload = self._read_frame()
            if opcode == PING:
                self._send(PONG, payload or b"")
                continue
            if opcode == PONG:
                continue
            if opcode == CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if payload and len(payload) >= 2 else NORMAL
                self.close(code if code in (NORMAL, GOING_AWAY) else NORMAL)
                raise Closed(f"peer closed the connection (code {code})")
            if opcode in (TEXT, BINARY):
                if opcode_first is not None:
                    self._fail(PROTOCOL_ERROR, "new message before the previous one finished")
                opcode_first = opcode
            elif opcode == CONTINUATION:
                if opcode_first is None:
                    self._fail(PROTOCOL_ERROR, "continuation frame without a message")
            else:
                self._fail(PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
            size += length
            if payload is None or size > self.max_message:
                too_big, parts = True, []
            elif not too_big:
                parts.append(payload)
            if fin:
                if too_big:
                    raise MessageTooBig(size, self.max_message)
                return opcode_first, b"".join(parts)

    # -- writing ---------------------------------------------------------------------------------

    def _send(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        header = bytearray([0x80 | opcode])
        mask_bit = 0x80 if self.client else 0
        if n < 126:
            header.append(mask_bit | n)
        elif n < 1 << 16:
            header += bytes([mask_bit | 126]) + struct.pack("!H", n)
        else:
            header += bytes([mask_bit | 127]) + struct.pack("!Q", n)
        if self.client:
            mask = os.urandom(4)
            header += mask
            payload = _unmask(payload, mask)
        with self._send_lock:
            if self.closed and opcode != CLOSE:
                raise Closed("connection is closed")
            try:
                self.sock.sendall(bytes(header) + payload)
            except OSError as error:
                self.closed = True
                raise Closed(str(error)) from None

    def send_text(self, text: str) -> None:
        self._send(TEXT, text.encode("utf-8"))

    def send_binary(self, data: bytes) -> None:
        self._send(BINARY, data)

    def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Send a close frame (once) and mark the connection closed; never raises."""
        if self.closed:
            return
        try:
            self._send(CLOSE, struct.pack("!H", code) + reason.encode("utf-8")[:120])
        except Closed:
            pass
        self.closed = True

    def abort(self, code: int = GOING_AWAY) -> None:
        """Close and shut the socket down, so a thread blocked in `recv` wakes up."""
        self.close(code)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _fail(self, code: int, reason: str):
        self.close(code, reason)
        raise Closed(f"protocol error: {reason}")


def _unmask(payload: bytes, mask: bytes) -> bytes:
    # XOR with the 4-byte mask repeated, done as one big integer operation (fast in CPython).
    n = len(payload)
    if not n:
        return payload
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def connect(host: str, port: int, path: str = "/ws", *, origin: str | None = None, max_message: int = 64 << 20,
            timeout: float = 30.0) -> WebSocket:
    """A client connection (for tests and benchmarks). Raises ConnectionError if refused."""
    sock = socket.create_connection((host, port), timeout=timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if origin:
        lines.append(f"Origin: {origin}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    reader = sock.makefile("rb")
    status = reader.readline().decode("latin-1").strip()
    headers = {}
    while True:
        line = reader.readline().decode("latin-1").strip()
        if not line:
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if not status.startswith("HTTP/1.1 101") or headers.get("sec-websocket-accept") != accept_key(key):
        sock.close()
        raise ConnectionError(f"WebSocket handshake refused: {status}")
    return WebSocket(sock, reader, max_message=max_message, client=True)
