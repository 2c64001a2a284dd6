"""A real SMTP server for tests (aiosmtpd) on 127.0.0.1: plain, STARTTLS or implicit TLS,
with or without sign-in, refusing chosen recipients, keeping every message it accepts."""

from __future__ import annotations

import email
import email.policy
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from emsbox.testing.mosquitto import free_port

Security = Literal["none", "starttls", "tls"]


@dataclass(frozen=True)
class Received:
    """A message the server accepted: the envelope and the parsed message."""

    sender: str
    recipients: list[str]
    message: EmailMessage
    login: str | None  # who signed in, if anybody

    def body(self) -> str:
        """The text of the message, decoded."""
        content = self.message.get_content()
        return content if isinstance(content, str) else ""


@dataclass
class _Handler:
    """aiosmtpd's handler: refuses the chosen recipients, keeps what arrives."""

    refuse: dict[str, str]
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's name)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """Refuse an address of ``refuse`` with its answer; accept the others."""
        with self.lock:
            answer = self.refuse.get(address)
        if answer is not None:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        """Keep the message."""
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        who = session.auth_data if isinstance(session.auth_data, str) else None
        with self.lock:
            self.received.append(
                Received(str(envelope.mail_from), list(envelope.rcpt_tos), message, who)
            )
        return "250 Message accepted"


class _Authenticator:
    """Signs in the users of a table (AUTH LOGIN and PLAIN)."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def __call__(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: object,
    ) -> AuthResult:
        """Success only for a known user with the right password."""
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        ok = self.users.get(login) == password
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server TLS context with the given certificate and key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    return context


class MailServer:
    """An SMTP server on 127.0.0.1 (``port`` 0: a free one), run in its own thread."""

    def __init__(
        self,
        port: int = 0,
        *,
        security: Security = "none",
        cert: Path | None = None,
        key: Path | None = None,
        users: dict[str, str] | None = None,
        refuse: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.security = security
        self._context = None
        if security != "none":
            assert cert is not None and key is not None, "TLS needs a certificate and key"
            self._context = server_context(cert, key)
        self._users = users
        self._handler = _Handler(dict(refuse or {}))
        self._controller: Controller | None = None

    def start(self) -> MailServer:
        """Listen (returns self)."""
        # aiosmtpd passes these on to its SMTP class, whose keywords it types as Any.
        kwargs: dict[str, Any] = {"server_hostname": "mail.test"}
        if self.security == "starttls":
            kwargs |= {"tls_context": self._context, "require_starttls": True}
        if self._users is not None:
            # aiosmtpd sees no STARTTLS on an implicit TLS connection, though it is encrypted:
            # there it must allow sign-in "without TLS", and then cannot also require it.
            implicit = self.security == "tls"
            kwargs |= {
                "authenticator": _Authenticator(self._users),
                "auth_required": not implicit,
                "auth_require_tls": not implicit,
            }
        self._controller = Controller(
            self._handler,
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=self._context if self.security == "tls" else None,
            **kwargs,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def refuse(self, address: str, answer: str | None) -> None:
        """Refuse ``address`` with ``answer`` from now on (None: accept it again)."""
        with self._handler.lock:
            if answer is None:
                self._handler.refuse.pop(address, None)
            else:
                self._handler.refuse[address] = answer

    @property
    def received(self) -> list[Received]:
        """Every message accepted so far."""
        with self._handler.lock:
            return list(self._handler.received)

    def wait_for(self, count: int = 1, timeout_s: float = 20.0) -> list[Received]:
        """The messages once at least ``count`` have arrived; AssertionError after
        ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while len(received := self.received) < count:
            assert time.monotonic() < deadline, f"{len(received)} of {count} messages arrived"
            time.sleep(0.02)
        return received
