"""TLS certificate and key for the web server: the device's own self-signed pair, made on
first start, or the user's own, checked before use.

The self-signed pair lives in ``<data dir>/tls/`` as ``device.crt`` and ``device.key`` (PEM),
both mode 0600. Users verify it by the SHA-256 fingerprint printed at start
(``fingerprint_sha256``).
Files found damaged are renamed aside, never deleted: they may be someone's only copy.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from emsbox.private_files import write_private

TLS_DIR = "tls"
CERT_FILE = "device.crt"
KEY_FILE = "device.key"
# Ten years: a device's own certificate is trusted by fingerprint, not by a CA, and a
# certificate that expires under a device nobody looks at would lock its users out.
SELF_SIGNED_VALIDITY = dt.timedelta(days=3650)
# Backdated, so that a device whose clock is a little behind (no RTC before NTP) accepts it.
_BACKDATE = dt.timedelta(days=1)
_PRIVATE_DIR_MODE = 0o700


class TlsError(Exception):
    """A certificate or key is missing, unreadable, invalid or mismatched; one-line message."""


@dataclass(frozen=True)
class TlsFiles:
    """A PEM certificate (chain) and its private key, ready for the server."""

    certificate: Path
    key: Path
    self_signed: bool
    expires_at: dt.datetime
    """End of the (first) certificate's validity, in UTC."""


def ensure_self_signed(data_dir: Path, hostnames: Sequence[str]) -> TlsFiles:
    """The device's self-signed certificate and key in ``data_dir/tls``, made if needed.

    Reused when both files are valid, matching and unexpired; otherwise any existing ones are
    renamed aside (``*.invalid-<time>``) and a new pair is made: an EC P-256 key and a
    certificate for ``hostnames``, the machine's host name, ``localhost``, 127.0.0.1 and ::1.
    """
    tls_dir = data_dir / TLS_DIR
    tls_dir.mkdir(parents=True, exist_ok=True, mode=_PRIVATE_DIR_MODE)
    cert_path, key_path = tls_dir / CERT_FILE, tls_dir / KEY_FILE
    if cert_path.exists() or key_path.exists():
        try:
            files = load_user_certificate(cert_path, key_path)
            if files.expires_at > _now():
                return TlsFiles(cert_path, key_path, True, files.expires_at)
        except TlsError:
            pass
        _set_aside(cert_path, key_path)
    return _make_self_signed(cert_path, key_path, hostnames)


def load_user_certificate(cert: Path, key: Path) -> TlsFiles:
    """The given certificate (chain) and key, checked: both PEM, readable, and matching."""
    cert_bytes = _read(cert, "certificate_file")
    key_bytes = _read(key, "key_file")
    try:
        chain = x509.load_pem_x509_certificates(cert_bytes)
    except ValueError:
        raise TlsError(f"certificate_file {cert} holds no PEM certificate") from None
    try:
        private_key = serialization.load_pem_private_key(key_bytes, password=None)
    except TypeError:
        raise TlsError(f"key_file {key} is encrypted; give the key without a passphrase") from None
    except (ValueError, UnsupportedAlgorithm):
        raise TlsError(f"key_file {key} holds no usable PEM private key") from None
    if _public_der(private_key.public_key()) != _public_der(chain[0].public_key()):
        raise TlsError(f"key_file {key} does not match certificate_file {cert}")
    return TlsFiles(cert, key, False, chain[0].not_valid_after_utc)


def fingerprint_sha256(cert_path: Path) -> str:
    """SHA-256 fingerprint of the (first) certificate, as browsers show it: ``AB:CD:...``."""
    try:
        certificate = x509.load_pem_x509_certificates(_read(cert_path, "certificate"))[0]
    except ValueError:
        raise TlsError(f"certificate {cert_path} holds no PEM certificate") from None
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def certificate_names(hostnames: Sequence[str]) -> list[str]:
    """The names a self-signed certificate covers: the given ones first, then the machine's."""
    machine = socket.gethostname()
    names = [*hostnames, machine]
    if machine and "." not in machine:
        names.append(f"{machine}.local")  # how mDNS (zeroconf) announces the device
    names += ["localhost", "127.0.0.1", "::1"]
    unique: list[str] = []
    for name in (n.strip() for n in names):
        if name and name.lower() not in (u.lower() for u in unique):
            unique.append(name)
    return unique


def _make_self_signed(cert_path: Path, key_path: Path, hostnames: Sequence[str]) -> TlsFiles:
    key = ec.generate_private_key(ec.SECP256R1())
    names = certificate_names(hostnames)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64]),  # X.520: CN at most 64
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "emsbox"),
        ]
    )
    now = _now()
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + SELF_SIGNED_VALIDITY)
        .add_extension(x509.SubjectAlternativeName(_general_names(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,  # ECDHE key exchange: the key only signs
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        # Strict verifiers (Python 3.13's VERIFY_X509_STRICT) want the AKI even when self-issued.
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # The key first: a certificate without its key is useless, and is set aside next start.
    write_private(key_path, key_pem)
    write_private(cert_path, certificate.public_bytes(serialization.Encoding.PEM))
    return TlsFiles(cert_path, key_path, True, certificate.not_valid_after_utc)


def _general_names(names: Sequence[str]) -> list[x509.GeneralName]:
    general: list[x509.GeneralName] = []
    for name in names:
        try:
            general.append(x509.IPAddress(ipaddress.ip_address(name)))
            continue
        except ValueError:
            pass
        try:
            # RFC 5280 §4.2.1.6: DNS names in their ASCII (IDNA) form.
            general.append(x509.DNSName(name.encode("idna").decode("ascii")))
        except UnicodeError:
            continue  # not a host name at all: leave it out rather than fail to start
    return general


def _set_aside(*paths: Path) -> None:
    """Rename existing files to ``<name>.invalid-<UTC time>``, keeping them for inspection."""
    stamp = _now().strftime("%Y%m%dT%H%M%SZ")
    for path in paths:
        if path.exists() or path.is_symlink():
            target = path.with_name(f"{path.name}.invalid-{stamp}")
            n = 1
            while target.exists():
                n += 1
                target = path.with_name(f"{path.name}.invalid-{stamp}-{n}")
            os.replace(path, target)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TlsError(f"{what} {path} does not exist") from None
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise TlsError(f"{what} {path} cannot be read: {reason}") from None


def _public_der(key: PublicKeyTypes) -> bytes:
    """A public key in DER SubjectPublicKeyInfo form, to compare keys of any type."""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
