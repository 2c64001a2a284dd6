"""The SMTP transport over aiosmtplib (the only module that imports it).

Holds the TLS context, the one-line reasons a connection or a message failed, the connection
(plain, STARTTLS or SMTPS, signed in if configured) that transmits messages, and the rule that
tells a refusal for good from one that settings can fix.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

from emsbox.gateways.email.config import EmailConfig, SmtpSecurity

# The first permanent-failure code of SMTP (RFC 5321 §4.2.1: 5yz is a permanent negative reply).
PERMANENT = 500


class EmailError(Exception):
    """A message could not be sent; the message is one line for the user."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def resolve_path(data_dir: Path, name: str) -> Path | None:
    """A file setting as a path: relative ones are in the data directory; empty is None."""
    if not name:
        return None
    path = Path(name)
    return path if path.is_absolute() else data_dir / path


def tls_context(ca_file: Path | None, check_hostname: bool) -> ssl.SSLContext:
    """A client TLS context: TLS 1.2 or later, the server's certificate checked.

    EmailError naming the file if the CA file cannot be used.
    """
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise EmailError(f"CA file {ca_file}: {reason(exc)}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = check_hostname
    return context


def reason(exc: BaseException) -> str:
    """One line saying why a connection or a message failed."""
    # The library wraps what the system said (a refused connection, a TLS failure): the
    # cause is what the user needs.
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"TLS failed: the server's certificate is not trusted ({seen.verify_message})"
        if isinstance(seen, ssl.SSLError):
            return f"TLS failed: {seen.reason or seen}"
        if isinstance(seen, socket.gaierror):
            return f"unknown host ({seen.strerror})"
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused (is the server running, and is this its port?)"
        if isinstance(seen, UnicodeError):
            return f"the host name cannot be looked up ({' '.join(str(seen).split())})"
        seen = seen.__cause__
    return _smtp_reason(exc)


def _answer(code: int, text: str) -> str:
    return f"{code} {' '.join(text.split())}".strip()


def _smtp_reason(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return f"authentication refused: {_answer(exc.code, exc.message)}"
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return f"sender {exc.sender} refused: {_answer(exc.code, exc.message)}"
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return "; ".join(_smtp_reason(each) for each in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        return f"recipient {exc.recipient} refused: {_answer(exc.code, exc.message)}"
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return f"message refused: {_answer(exc.code, exc.message)}"
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return "no answer (timed out)"
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"the server answered {_answer(exc.code, exc.message)}"
    if isinstance(exc, aiosmtplib.SMTPException):
        return " ".join(exc.message.split())
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).split()) or type(exc).__name__


def _for_good(code: int, text: str) -> bool:
    """Whether an answer refuses for good: 5xx, but for 5.7.x (RFC 3463: security or policy,
    e.g. "relaying denied" without sign-in), which settings can fix."""
    return code >= PERMANENT and not text.lstrip().startswith("5.7.")


def refused_for_good(answer: str) -> bool:
    """``_for_good`` of an answer as ``_answer`` writes it ("550 5.1.1 no such user")."""
    code, _, text = answer.partition(" ")
    return code.isdigit() and _for_good(int(code), text)


def _permanent(exc: BaseException) -> bool:
    """Whether the server refused this message for good (5xx to all its recipients or to
    its content); a refused sign-in or sender, or a 5.7.x refusal, is a setting to fix, tried
    again."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(_for_good(each.code, each.message) for each in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
        return _for_good(exc.code, exc.message)
    return False


def cancelling() -> bool:
    """Whether the running task is being cancelled (the notifier stops), even if a library
    caught the CancelledError on its way."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class SmtpConnection:
    """One connection to the server, secured and signed in: transmits messages, then leaves."""

    def __init__(self, client: aiosmtplib.SMTP, config: EmailConfig) -> None:
        self._client = client
        self._config = config

    @classmethod
    async def open(cls, config: EmailConfig, ca_file: Path | None) -> SmtpConnection:
        """A connection, secured and signed in as ``config`` says; EmailError otherwise."""
        context = None
        if config.security is not SmtpSecurity.NONE:
            context = tls_context(ca_file, config.check_hostname)
        try:
            client = aiosmtplib.SMTP(
                hostname=config.host,
                port=config.port,
                username=config.username or None,
                password=config.password.get_secret_value() if config.username else None,
                timeout=config.timeout_s,
                use_tls=config.security is SmtpSecurity.TLS,
                # None would upgrade only if offered; asked for, STARTTLS is required, and with
                # "none" it is never attempted (a relay's self-signed certificate must not fail).
                start_tls=config.security is SmtpSecurity.STARTTLS,
                tls_context=context,
            )
            await client.connect()
        except Exception as exc:  # any failure (a bad host name) is one line
            raise EmailError(reason(exc), _permanent(exc)) from exc
        return cls(client, config)

    async def transmit(self, message: EmailMessage, to: Sequence[str]) -> dict[str, str]:
        """Send ``message`` to ``to``; the recipients refused while others were accepted, with
        the reasons. EmailError if nobody got it."""
        sender = self._config.sender
        try:
            # The running settings name the sender: a message spooled before a fix goes with it.
            del message["From"]
            message["From"] = sender
            refused, _ = await self._client.send_message(message, sender=sender, recipients=to)
        except Exception as exc:  # any failure is one line, tried again
            raise EmailError(reason(exc), _permanent(exc)) from exc
        return {
            address: _answer(answer.code, answer.message) for address, answer in refused.items()
        }

    async def leave(self) -> None:
        """Say goodbye; a server that went away meanwhile needs none."""
        if cancelling():
            self._client.close()  # stopping: no waiting for a slow server's answer
            return
        try:
            await self._client.quit()
        except Exception:  # whatever the goodbye does, the connection is closed
            self._client.close()


async def send_once(config: EmailConfig, ca_file: Path | None, message: EmailMessage) -> None:
    """Connect, send one message to the configured recipients and leave; EmailError
    (with every refused recipient) if anything fails."""
    connection = await SmtpConnection.open(config, ca_file)
    try:
        refused = await connection.transmit(message, list(config.recipients))
    finally:
        await connection.leave()
    if refused:
        # The others got it; the test is there to find exactly this.
        raise EmailError(
            "; ".join(f"recipient {who} refused: {why}" for who, why in refused.items())
        )
