"""The MQTT gateway's certificate files, uploaded from the web app.

Installers cannot copy files onto the device, so the broker's certificate authority, the
device's client certificate and its private key are sent here one at a time (the PEM file as
the request body). Each is checked before it is kept: certificates must read as PEM X.509
certificates, a key as one unencrypted PEM private key. Files are kept in ``<data dir>/mqtt/``
(readable by emsbox only), replaced atomically, and the answer gives the path to put in the
``mqtt`` settings, relative to the data directory (as the gateway reads it).
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, Field

from emsbox.private_files import write_private
from emsbox.web.api.deps import Installer, ServiceDep

log = logging.getLogger(__name__)

router = APIRouter(prefix="/mqtt", tags=["mqtt"])

DIRECTORY = "mqtt"  # in the data directory
MAX_BYTES = 64 * 1024
PEM_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
CERTIFICATE = "CERTIFICATE"
# Keys that can sign a TLS handshake.
SIGNING_KEYS = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)


class FileKind(StrEnum):
    """Which certificate file: the broker's CA, the client certificate or its key."""

    CA = "ca"
    CERT = "cert"
    KEY = "key"


@dataclass(frozen=True)
class _Slot:
    file: str
    setting: str


SLOTS = {
    FileKind.CA: _Slot("ca.pem", "mqtt.ca_file"),
    FileKind.CERT: _Slot("client-cert.pem", "mqtt.client_cert_file"),
    FileKind.KEY: _Slot("client-key.pem", "mqtt.client_key_file"),
}


class MqttFileOut(BaseModel):
    """A certificate file kept for the MQTT gateway."""

    kind: FileKind
    name: str = Field(description="The file's name in the mqtt directory.")
    path: str = Field(
        description="Its path relative to the data directory: the value of ``setting``."
    )
    setting: str = Field(description="The setting that names this file (mqtt.ca_file, ...).")
    size: int = Field(description="Bytes.")
    certificates: int | None = Field(
        default=None, description="How many certificates it holds (certificate files)."
    )
    subject: str | None = Field(
        default=None, description="Subject of its first certificate (RFC 4514)."
    )
    not_after: str | None = Field(
        default=None, description="End of validity of its first certificate, ISO 8601 UTC."
    )


class UnusableFileError(Exception):
    """The uploaded file cannot serve as what it was sent for; a one-line reason."""


def _labels(data: bytes) -> list[str]:
    labels = [label.decode("ascii") for label in PEM_LABEL.findall(data)]
    if not labels:
        raise UnusableFileError(
            "not a PEM file (no -----BEGIN ...----- line); convert a DER file with "
            "openssl x509 -inform der -in FILE -out FILE.pem"
        )
    return labels


def certificates_of(data: bytes) -> list[x509.Certificate]:
    """The PEM certificates ``data`` holds, and nothing else; UnusableFileError otherwise."""
    others = sorted(set(_labels(data)) - {CERTIFICATE})
    if any(label.endswith("PRIVATE KEY") for label in others):
        raise UnusableFileError(
            "the file holds a private key: send certificates only, the key separately"
        )
    if others:
        raise UnusableFileError(f"the file holds a {others[0]} block, not only certificates")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise UnusableFileError("a certificate in the file cannot be read (damaged PEM?)") from None


def check_key(data: bytes) -> None:
    """``data`` is one unencrypted PEM private key that can sign; UnusableFileError otherwise."""
    labels = _labels(data)
    if set(labels) == {CERTIFICATE}:
        raise UnusableFileError("this is a certificate, not a private key")
    if "ENCRYPTED PRIVATE KEY" in labels or b"Proc-Type: 4,ENCRYPTED" in data:
        raise UnusableFileError(
            "the key is protected by a passphrase: remove it first "
            "(openssl pkey -in KEY -out KEY-plain.pem)"
        )
    # `openssl ecparam -genkey` writes the curve's parameters before the key.
    rest = [label for label in labels if label != "EC PARAMETERS"]
    if len(rest) != 1 or not rest[0].endswith("PRIVATE KEY"):
        raise UnusableFileError("the file must hold exactly one private key and nothing else")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # encrypted without saying so in its headers
        raise UnusableFileError("the key is protected by a passphrase: remove it first") from None
    except (ValueError, UnsupportedAlgorithm):
        raise UnusableFileError(
            "the private key cannot be read (damaged PEM or unknown type)"
        ) from None
    if not isinstance(key, SIGNING_KEYS):
        raise UnusableFileError(
            f"a {type(key).__name__} cannot sign a TLS connection: use RSA or EC"
        )


def describe(data_dir: Path, kind: FileKind) -> MqttFileOut | None:
    """What is kept for ``kind``, or None if nothing is."""
    slot = SLOTS[kind]
    path = data_dir / DIRECTORY / slot.file
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    out = MqttFileOut(
        kind=kind,
        name=slot.file,
        path=f"{DIRECTORY}/{slot.file}",
        setting=slot.setting,
        size=len(data),
    )
    if kind is FileKind.KEY:
        return out
    try:
        found = certificates_of(data)
    except UnusableFileError:  # changed by hand since: listed, without details
        return out
    first = found[0]
    return out.model_copy(
        update={
            "certificates": len(found),
            "subject": first.subject.rfc4514_string(),
            "not_after": first.not_valid_after_utc.isoformat(),
        }
    )


def store(data_dir: Path, kind: FileKind, data: bytes) -> MqttFileOut:
    """Check ``data`` as ``kind`` and keep it, replacing the previous file atomically."""
    if kind is FileKind.KEY:
        check_key(data)
    else:
        certificates_of(data)
    directory = data_dir / DIRECTORY
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = directory / SLOTS[kind].file
    write_private(target, data)
    described = describe(data_dir, kind)
    assert described is not None
    return described


async def _body(request: Request) -> bytes:
    """The request's body, refused (413) beyond MAX_BYTES without reading further."""
    too_large = HTTPException(
        413,  # Content Too Large
        f"the file is larger than {MAX_BYTES // 1024} kB: no certificate or key is that big",
    )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BYTES:
        raise too_large
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BYTES:
            raise too_large
    return bytes(data)


@router.get("/files", response_model=list[MqttFileOut], summary="The MQTT certificate files")
async def files(service: ServiceDep, _: Installer) -> list[MqttFileOut]:
    """The certificate files kept for the MQTT gateway (those that exist), with the subject
    and end of validity of each certificate file's first certificate."""
    found = [await asyncio.to_thread(describe, service.data_dir, kind) for kind in FileKind]
    return [f for f in found if f is not None]


@router.put(
    "/files/{kind}",
    response_model=MqttFileOut,
    summary="Upload an MQTT certificate file",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The PEM file, at most 64 kB.",
            "content": {"application/x-pem-file": {"schema": {"type": "string"}}},
        }
    },
    responses={
        400: {"description": "Not a usable PEM certificate or key; the reason."},
        413: {"description": "Larger than 64 kB."},
    },
)
async def put_file(
    kind: FileKind, request: Request, service: ServiceDep, who: Installer
) -> MqttFileOut:
    """Check and keep a PEM file as ``<data dir>/mqtt/ca.pem`` (``kind`` ca: the authority
    that signed the broker's certificate), ``client-cert.pem`` (cert: the device's
    certificate, then any intermediates) or ``client-key.pem`` (key: its private key,
    unencrypted). The answer's ``path`` goes in the setting it names; the settings are saved
    as usual. When the running settings already name that file, the gateway reconnects with
    the new one at once."""
    data = await _body(request)
    try:
        stored = await asyncio.to_thread(store, service.data_dir, kind, data)
    except UnusableFileError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    log.info("mqtt: %s stored %s (%d bytes)", who.label, stored.path, stored.size)
    await asyncio.to_thread(service.mqtt_file_replaced, stored.path)
    return stored
