"""The web server: HTTPS on its port, and a plain HTTP port that only redirects to it.

Both run in one asyncio loop on sockets bound before serving, so the URL printed at start
names the real port (also when port 0 asks for any free one).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from emsbox.web.config import WebConfig
from emsbox.web.tls import TlsFiles, ensure_self_signed, load_user_certificate

# ASGI types, spelled out to keep the redirect app free of framework code.
Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to us (two servers share one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def tls_files(config: WebConfig, data_dir: Path) -> TlsFiles:
    """The user's certificate when configured, else the device's own self-signed one."""
    if config.certificate_file is not None and config.key_file is not None:
        cert, key = config.certificate_file, config.key_file
        return load_user_certificate(
            cert if cert.is_absolute() else data_dir / cert,
            key if key.is_absolute() else data_dir / key,
        )
    return ensure_self_signed(data_dir, [socket.gethostname()])


def bind(address: str, port: int) -> socket.socket:
    """A listening TCP socket (IPv6 when the address is one)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose protocol says TCP,
    # and without it small TLS writes wait for delayed ACKs (about 40 ms per response).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((address, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def redirect_app(https_port: int) -> Callable[[Scope, Receive, Send], Any]:
    """An ASGI app answering every request with a permanent redirect to the HTTPS URL."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1") or "localhost"
        # Keep the host name, replace the port (a bracketed IPv6 address keeps its colons).
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 or "]:" in host else host
        authority = name if https_port == 443 else f"{name}:{https_port}"
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        target = f"https://{authority}{path.decode('latin-1')}"
        if query:
            target += "?" + query.decode("latin-1")
        await send(
            {
                "type": "http.response.start",
                "status": 308,
                "headers": [(b"location", target.encode("latin-1")), (b"content-length", b"0")],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    return app


class WebServer:
    """The HTTPS API server plus its HTTP redirect: bound at construction, served later.

    Binding first lets the caller print the real URL and start the service before the app
    it serves exists; SIGINT/SIGTERM are remembered from construction on, so a stop asked for
    during start-up is honoured as soon as serving begins.
    """

    def __init__(self, config: WebConfig, data_dir: Path) -> None:
        self.redirect_url: str | None = None
        self.tls: TlsFiles | None = None
        self._stop_requested = False
        self._servers: list[_Server] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._remember_stop)
        if config.plain_http_localhost:
            self._main = bind("127.0.0.1", config.https_port)
            self.url = f"http://127.0.0.1:{self._main.getsockname()[1]}/"
            self._plain: socket.socket | None = None
            return
        self.tls = tls_files(config, data_dir)
        self._main = bind(config.bind_address, config.https_port)
        self._port = int(self._main.getsockname()[1])
        wildcard = config.bind_address in ("0.0.0.0", "::", "127.0.0.1")
        shown = "localhost" if wildcard else config.bind_address
        self.url = f"https://{shown}:{self._port}/"
        self._plain = bind(config.bind_address, config.http_port) if config.http_redirect else None
        if self._plain is not None:
            self.redirect_url = f"http://{shown}:{self._plain.getsockname()[1]}/"

    @staticmethod
    def _uvicorn(app: Any, **tls: str) -> _Server:
        return _Server(
            uvicorn.Config(
                app,
                log_level="warning",
                access_log=False,
                lifespan="off",
                server_header=False,
                timeout_graceful_shutdown=3,
                **tls,  # type: ignore[arg-type]
            )
        )

    def serve_forever(self, app: FastAPI) -> None:
        """Serve ``app`` until SIGINT or SIGTERM (on uvloop where it is installed)."""
        tls = {}
        if self.tls is not None:
            tls = {"ssl_certfile": str(self.tls.certificate), "ssl_keyfile": str(self.tls.key)}
        served = [(self._uvicorn(app, **tls), self._main)]
        if self._plain is not None:
            served.append((self._uvicorn(redirect_app(self._port)), self._plain))
        self._servers = [server for server, _ in served]
        factory: Callable[[], asyncio.AbstractEventLoop] | None = None
        with contextlib.suppress(ImportError):
            import uvloop

            factory = uvloop.new_event_loop
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(self._serve(served))

    def _remember_stop(self, signum: int, frame: object) -> None:
        self._stop_requested = True

    async def _serve(self, served: list[tuple[_Server, socket.socket]]) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_stop)
        if self._stop_requested:
            self.request_stop()
        await asyncio.gather(*(server.serve([sock]) for server, sock in served))

    def request_stop(self) -> None:
        """Ask every server to finish (safe from a signal handler in the loop)."""
        self._stop_requested = True
        for server in self._servers:
            server.should_exit = True
