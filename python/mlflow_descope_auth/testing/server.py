"""HTTP plumbing of the Descope emulator: a loopback-only threaded server.

The server knows nothing about Descope: it parses a request, asks the
emulator for a `Reply` (or a `Fault` to act out) and writes it. Every
handler thread is tracked so `stop()` can close idle keep-alive
connections and join the threads, leaving nothing behind.
"""

from __future__ import annotations

import contextlib
import http.server
import ipaddress
import json
import logging
import socket
import socketserver
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol
from urllib.parse import parse_qs, urlsplit

from mlflow_descope_auth.testing.faults import Fault, FaultBody

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20
IDLE_CONNECTION_SECONDS = 60.0

_CORS_HEADERS = (
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Expose-Headers", "Retry-After"),
)


def loopback_address(host: str) -> str:
    """The IP literal to bind for `host`; ValueError unless it is loopback."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"the Descope emulator binds only to loopback; {host!r} is not an IP address "
            "(use 127.0.0.1, ::1 or localhost)"
        ) from None
    if not address.is_loopback:
        raise ValueError(
            f"the Descope emulator binds only to loopback (127.0.0.0/8, ::1); refused {host!r}"
        )
    return str(address)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON (`{}` when empty); ValueError when malformed."""
        if not self.body.strip():
            return {}
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def json(cls, status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
        return cls(status, json.dumps(payload).encode("utf-8"), "application/json", headers)


def fault_reply(fault: Fault, default_status: int, error: Callable[[int], Reply]) -> Reply:
    """The answer a fault gives once any hang is over."""
    status = fault.status if fault.status is not None else default_status
    headers: tuple[tuple[str, str], ...] = ()
    if fault.retry_after is not None:
        headers = (("Retry-After", str(fault.retry_after)),)
    if fault.body is None:
        base = error(status)
        return Reply(status, base.body, base.content_type, headers)
    return Reply(status, _body_bytes(fault.body), _content_type(fault), headers)


def _body_bytes(body: FaultBody) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


def _content_type(fault: Fault) -> str:
    if fault.content_type is not None:
        return fault.content_type
    return "application/json"


class Application(Protocol):
    """What the server needs from the emulator (implemented by `DescopeEmulator`)."""

    @property
    def max_hang(self) -> float: ...

    def endpoint_for(self, method: str, path: str) -> Optional[str]: ...

    def record_call(self, endpoint: str) -> tuple[Optional[Fault], threading.Event]: ...

    def handle(self, endpoint: Optional[str], request: Request) -> Reply: ...

    def error_reply(self, status: int) -> Reply: ...


class LoopbackServer(http.server.HTTPServer):
    """A threaded HTTP server that tracks its connections and handler threads."""

    daemon_threads = True

    def __init__(self, address: str, port: int, app: Application) -> None:
        self.address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.app = app
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}
        super().__init__((address, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves a host name (reverse DNS); loopback needs none.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name="descope-emulator-conn",
            daemon=True,
        )
        with self._lock:
            self._connections[request] = thread
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            # A client that vanishes mid-request is routine for an emulator.
            logger.debug("connection from %s ended with an error", client_address, exc_info=True)
        finally:
            with self._lock:
                self._connections.pop(request, None)
            self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("could not take a connection from %s", client_address)

    def close_connections(self, join_timeout: float) -> None:
        """Wake every handler (idle keep-alive reads included) and join its thread."""
        with self._lock:
            connections = list(self._connections.items())
        for sock, _ in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for _, thread in connections:
            thread.join(join_timeout)
            if thread.is_alive():
                logger.warning("a Descope emulator connection thread did not stop in time")


class _Handler(http.server.BaseHTTPRequestHandler):
    server: LoopbackServer
    protocol_version = "HTTP/1.1"
    timeout = IDLE_CONNECTION_SECONDS

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        requested = self.headers.get("Access-Control-Request-Headers")
        headers = (
            ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
            ("Access-Control-Allow-Headers", requested or "Authorization, Content-Type"),
            ("Access-Control-Max-Age", "600"),
        )
        self._drain_body()
        self._write(Reply(204, b"", "text/plain", headers))

    def version_string(self) -> str:
        return "descope-emulator"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def _dispatch(self) -> None:
        app = self.server.app
        url = urlsplit(self.path)
        endpoint = app.endpoint_for(self.command, url.path)
        body = self._read_body()
        if body is None:
            self.close_connection = True
            self._write(app.error_reply(400))
            return

        if endpoint is not None:
            fault, release = app.record_call(endpoint)
            if fault is not None:
                self._act_out(fault, release)
                return

        request = Request(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query),
            headers={key.lower(): value for key, value in self.headers.items()},
            body=body,
        )
        try:
            reply = app.handle(endpoint, request)
        except Exception:
            # A bug in the emulator: answer 500 rather than a silent dropped connection.
            logger.exception("Descope emulator failed on %s %s", self.command, url.path)
            reply = app.error_reply(500)
        self._write(reply)

    def _act_out(self, fault: Fault, release: threading.Event) -> None:
        app = self.server.app
        if fault.hang is not None:
            release.wait(min(fault.hang, app.max_hang))
        if fault.close:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        default_status = 503 if fault.hang is not None else 200
        self._write(fault_reply(fault, default_status, app.error_reply))

    def _read_body(self) -> Optional[bytes]:
        """The request body; None when its framing is bogus or it is too large."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        if length < 0 or length > MAX_BODY_BYTES:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> Optional[bytes]:
        body = b""
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                return None
            if size == 0:
                break
            if size < 0 or len(body) + size > MAX_BODY_BYTES:
                return None
            body += self.rfile.read(size)
            self.rfile.readline(1024)  # the CRLF after each chunk
        while self.rfile.readline(1024).strip():  # trailer fields, if any
            pass
        return body

    def _drain_body(self) -> None:
        if self._read_body() is None:
            self.close_connection = True

    def _write(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (*_CORS_HEADERS, *reply.headers):
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(reply.body)
