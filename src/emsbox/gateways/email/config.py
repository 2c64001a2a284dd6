"""Settings of the e-mail notifications."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from enum import StrEnum
from typing import Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

# A plain address (local@domain), ASCII only: what every SMTP server takes without the
# SMTPUTF8 extension. Display names are left out on purpose: the settings hold addresses.
ADDRESS = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
MAX_ADDRESS = 254  # RFC 5321 §4.5.3.1.3: the longest path is 256 octets with its brackets
# What a host name is made of once IDNA-encoded (the underscore of some internal names too).
HOST_ASCII = re.compile(r"^[A-Za-z0-9_.-]+$")
# Hosts where a password sent in clear never leaves the device.
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


class SmtpSecurity(StrEnum):
    """How the connection to the mail server is protected."""

    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


class AlarmEventKind(StrEnum):
    """An alarm event that can be sent by e-mail."""

    RAISED = "raised"
    CLEARED = "cleared"
    ACKNOWLEDGED = "acknowledged"


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control character or a line or paragraph separator."""
    return any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text)


def check_host(value: str) -> str:
    """``value`` stripped if it is an IPv4 or IPv6 address or a host name that IDNA can encode
    (labels of 1 to 63 characters); ValueError otherwise. Empty stays empty (not set yet)."""
    host = value.strip()
    if not host:
        return ""
    with_brackets = host.startswith("[") and host.endswith("]")
    try:
        ipaddress.ip_address(host[1:-1] if with_brackets else host)
    except ValueError:
        pass
    else:
        return host[1:-1] if with_brackets else host
    try:
        encoded = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(
            f"{value!r} is not a host name (no empty parts between dots, at most 63 "
            "characters each)"
        ) from None
    if not HOST_ASCII.match(encoded) or encoded.startswith("."):
        raise ValueError(f"{value!r} is not a host name or address (smtp.example.com)")
    return host


def check_address(value: str) -> str:
    """``value`` stripped if it is a plain e-mail address; ValueError otherwise."""
    address = value.strip()
    if len(address) > MAX_ADDRESS or not ADDRESS.match(address):
        raise ValueError(f"{value!r} is not an e-mail address (name@example.com)")
    return address


class EmailConfig(BaseModel):
    """E-mail notifications of alarm events, through any SMTP server."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(
        default=False,
        description=(
            "Send alarm events by e-mail (off by default). While off nothing connects; "
            "messages already waiting in the spool stay there until it is on again."
        ),
    )
    host: str = Field(
        default="",
        max_length=253,
        description="Host name (international names too) or IPv4 or IPv6 address of the SMTP "
        "server.",
    )
    port: int = Field(
        default=587,
        ge=1,
        le=65535,
        description="Port of the SMTP server: 587 with STARTTLS, 465 with TLS, 25 for a local "
        "relay.",
    )
    security: SmtpSecurity = Field(
        default=SmtpSecurity.STARTTLS,
        description=(
            "starttls: connect in clear and switch to TLS before anything is sent (port 587); "
            "tls: TLS from the first byte, SMTPS (port 465); none: no encryption, for a relay "
            "on a trusted local network only (port 25)."
        ),
    )
    ca_file: str = Field(
        default="",
        max_length=500,
        description=(
            "PEM file of the certificate authority that signed the server's certificate "
            "(relative paths are in the data directory); empty: the system's trusted "
            "authorities."
        ),
    )
    check_hostname: bool = Field(
        default=True,
        description=(
            "Check that the server's certificate names the host connected to. Turn off only "
            "for a server reached by an address its certificate does not list."
        ),
    )
    username: str = Field(
        default="",
        max_length=500,
        description=(
            "User name at the server; empty: no sign-in. Signing in needs starttls or tls "
            "(but to 127.0.0.1, ::1 or localhost): the password would cross the network in clear."
        ),
    )
    password: SecretStr = Field(
        default=SecretStr(""), description="Password at the server; empty: none."
    )
    sender: str = Field(
        default="",
        max_length=MAX_ADDRESS,
        description="The address messages come from (many servers accept only the account's own).",
    )
    recipients: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Addresses every message is sent to.",
    )
    events: list[AlarmEventKind] = Field(
        default_factory=lambda: [AlarmEventKind.RAISED, AlarmEventKind.CLEARED],
        max_length=3,
        description="Which alarm events are sent: raised, cleared, acknowledged.",
    )
    subject_prefix: str = Field(
        default="[emsbox]",
        max_length=50,
        description=(
            "Text at the start of every subject, for mail filters (one line); empty: none."
        ),
    )
    max_waiting: int = Field(
        default=1000,
        ge=10,
        le=100_000,
        description=(
            "Most messages kept waiting in the spool while they cannot be sent; when it is "
            "full the oldest is dropped (and logged) so that the newest events get through."
        ),
    )
    timeout_s: float = Field(
        default=30.0,
        ge=1.0,
        le=300.0,
        description="Longest wait for the server at each step (connection, each command).",
    )
    retry_max_age_h: float = Field(
        default=24.0,
        ge=0.1,
        le=720.0,
        description=(
            "How long a message that could not be sent is tried again, counted while "
            "emsbox runs (waits double from 10 s to 10 min); after that it is dropped and "
            "the failure logged."
        ),
    )

    @field_validator("sender")
    @classmethod
    def _sender_address(cls, value: str) -> str:
        """The sender is empty (not set yet) or an address."""
        return check_address(value) if value.strip() else ""

    @field_validator("recipients")
    @classmethod
    def _recipient_addresses(cls, value: list[str]) -> list[str]:
        """Every recipient is an address, each once."""
        addresses = [check_address(v) for v in value]
        doubled = sorted({a for a in addresses if addresses.count(a) > 1})
        if doubled:
            raise ValueError(f"each recipient once: {', '.join(doubled)}")
        return addresses

    @field_validator("events")
    @classmethod
    def _events_once(cls, value: list[AlarmEventKind]) -> list[AlarmEventKind]:
        """Each event kind once, in their natural order."""
        return [kind for kind in AlarmEventKind if kind in value]

    @field_validator("host")
    @classmethod
    def _host_plain(cls, value: str) -> str:
        """A host name (IDNA-encodable, no empty labels) or an IPv4 or IPv6 address."""
        if any(c.isspace() for c in value.strip()):
            raise ValueError("a host name has no spaces")
        return check_host(value)

    @field_validator("subject_prefix")
    @classmethod
    def _prefix_one_line(cls, value: str) -> str:
        """No line breaks nor other control characters: a subject is one line."""
        if has_control(value):
            raise ValueError("no line breaks or other control characters")
        return value

    @model_validator(mode="after")
    def _complete(self) -> Self:
        """What sending needs, checked only when e-mail is on; each problem at its field."""
        if not self.enabled:
            return self
        missing = [
            (key, message)
            for key, message, ok in (
                ("host", "the SMTP server's host is needed", bool(self.host)),
                ("sender", "the sender's address is needed", bool(self.sender)),
                ("recipients", "at least one recipient is needed", bool(self.recipients)),
            )
            if not ok
        ]
        if (
            self.username
            and self.security is SmtpSecurity.NONE
            and self.host.lower() not in LOOPBACK
        ):
            # The password would cross the network in clear.
            missing.append(("security", "sign-in needs starttls or tls"))
        if missing:
            # Raised at the fields' own paths (email.host), for the settings form.
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError("missing_setting", message),
                        loc=(key,),
                        input=getattr(self, key),
                    )
                    for key, message in missing
                ],
            )
        return self
