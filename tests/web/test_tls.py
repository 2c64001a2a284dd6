"""TLS files: the self-signed certificate, user certificates, fingerprints and a handshake."""

import datetime as dt
import ipaddress
import socket
import ssl
import stat
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from emsbox.web.tls import (
    CERT_FILE,
    KEY_FILE,
    TLS_DIR,
    TlsError,
    ensure_self_signed,
    fingerprint_sha256,
    load_user_certificate,
)


def load_cert(path):
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_self_signed_pair_is_made_private_with_the_right_contents(tmp_path):
    files = ensure_self_signed(tmp_path, ["emsbox-demo.example", "192.0.2.10"])
    assert files.certificate == tmp_path / TLS_DIR / CERT_FILE
    assert files.key == tmp_path / TLS_DIR / KEY_FILE
    assert files.self_signed
    for path in (files.certificate, files.key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / TLS_DIR).stat().st_mode) == 0o700
    assert [p.name for p in (tmp_path / TLS_DIR).iterdir() if p.name.startswith(".")] == []

    cert = load_cert(files.certificate)
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == "emsbox-demo.example" and cert.issuer == cert.subject
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = san.get_values_for_type(x509.DNSName)
    ips = san.get_values_for_type(x509.IPAddress)
    assert {"emsbox-demo.example", socket.gethostname(), "localhost"} <= set(dns)
    assert {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")} <= set(ips)
    assert ipaddress.ip_address("192.0.2.10") in ips
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca is False
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=3640) < lifetime < dt.timedelta(days=3660)
    assert files.expires_at == cert.not_valid_after_utc

    key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"


def test_self_signed_pair_is_reused(tmp_path):
    first = ensure_self_signed(tmp_path, ["a.example"])
    fingerprint = fingerprint_sha256(first.certificate)
    second = ensure_self_signed(tmp_path, ["b.example"])
    assert second == first and fingerprint_sha256(second.certificate) == fingerprint
    assert sorted(p.name for p in (tmp_path / TLS_DIR).iterdir()) == [CERT_FILE, KEY_FILE]


@pytest.mark.parametrize(
    "damage",
    ["garbage_cert", "garbage_key", "missing_cert", "missing_key", "other_key", "empty_key"],
)
def test_damaged_pairs_are_set_aside_and_remade(tmp_path, damage):
    first = ensure_self_signed(tmp_path, [])
    old_fingerprint = fingerprint_sha256(first.certificate)
    old = {p.name: p.read_bytes() for p in (first.certificate, first.key)}
    if damage == "garbage_cert":
        first.certificate.write_bytes(b"not a certificate")
    elif damage == "garbage_key":
        first.key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    elif damage == "missing_cert":
        first.certificate.unlink()
    elif damage == "missing_key":
        first.key.unlink()
    elif damage == "other_key":
        other = ec.generate_private_key(ec.SECP256R1())
        first.key.write_bytes(
            other.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    elif damage == "empty_key":
        first.key.write_bytes(b"")
    kept = {p.name: p.read_bytes() for p in (first.certificate, first.key) if p.exists()}

    again = ensure_self_signed(tmp_path, [])
    assert fingerprint_sha256(again.certificate) != old_fingerprint
    load_user_certificate(again.certificate, again.key)  # the new pair matches
    for path in (again.certificate, again.key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Whatever was there is kept, renamed, never deleted.
    aside = {
        p.name.split(".invalid-")[0]: p.read_bytes()
        for p in (tmp_path / TLS_DIR).iterdir()
        if ".invalid-" in p.name
    }
    assert aside == kept and set(aside) <= set(old)


def test_an_expired_self_signed_certificate_is_remade(tmp_path):
    files = ensure_self_signed(tmp_path, [])
    key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old")])
    past = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)
    expired = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(past)
        .not_valid_after(past + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    files.certificate.write_bytes(expired.public_bytes(serialization.Encoding.PEM))
    again = ensure_self_signed(tmp_path, [])
    assert load_cert(again.certificate).not_valid_after_utc > dt.datetime.now(dt.UTC)
    assert any(".invalid-" in p.name for p in (tmp_path / TLS_DIR).iterdir())


def test_fingerprint_is_sha256_of_the_der_certificate(tmp_path):
    files = ensure_self_signed(tmp_path, [])
    import hashlib

    der = load_cert(files.certificate).public_bytes(serialization.Encoding.DER)
    expected = hashlib.sha256(der).hexdigest().upper()
    shown = fingerprint_sha256(files.certificate)
    assert shown.replace(":", "") == expected and len(shown.split(":")) == 32


# -- user certificates -------------------------------------------------------------------


def make_pair(directory, stem, key=None, chain_with=None):
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{stem}.example")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=90))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    pem = cert.public_bytes(serialization.Encoding.PEM)
    if chain_with is not None:
        pem += chain_with.read_bytes()
    cert_path.write_bytes(pem)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path, cert


def test_a_good_user_pair_with_a_chain_is_accepted(tmp_path):
    ca_cert, _, _ = make_pair(tmp_path, "ca")
    cert, key, parsed = make_pair(tmp_path, "site", chain_with=ca_cert)
    files = load_user_certificate(cert, key)
    assert files.certificate == cert and files.key == key and not files.self_signed
    assert files.expires_at == parsed.not_valid_after_utc
    assert (
        fingerprint_sha256(cert).replace(":", "").lower()
        == parsed.fingerprint(hashes.SHA256()).hex()
    )


def test_bad_user_pairs_are_refused_with_one_clear_line(tmp_path):
    cert, key, _ = make_pair(tmp_path, "a")
    _, other_key, _ = make_pair(tmp_path, "b")
    cases = [
        (tmp_path / "none.crt", key, f"certificate_file {tmp_path / 'none.crt'} does not exist"),
        (cert, tmp_path / "none.key", f"key_file {tmp_path / 'none.key'} does not exist"),
        (cert, other_key, f"key_file {other_key} does not match certificate_file {cert}"),
        (key, key, f"certificate_file {key} holds no PEM certificate"),
        (cert, cert, f"key_file {cert} holds no usable PEM private key"),
    ]
    encrypted = tmp_path / "enc.key"
    encrypted.write_bytes(
        serialization.load_pem_private_key(key.read_bytes(), None).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    cases.append((cert, encrypted, f"key_file {encrypted} is encrypted"))
    directory = tmp_path / "a-directory"
    directory.mkdir()
    cases.append((directory, key, f"certificate_file {directory} cannot be read"))
    for cert_path, key_path, message in cases:
        with pytest.raises(TlsError) as info:
            load_user_certificate(cert_path, key_path)
        assert str(info.value).startswith(message), str(info.value)
        assert "\n" not in str(info.value)
    with pytest.raises(TlsError, match="does not exist"):
        fingerprint_sha256(tmp_path / "nothing.pem")


# -- a real handshake --------------------------------------------------------------------


def test_a_client_trusting_the_certificate_completes_a_handshake(tmp_path):
    files = ensure_self_signed(tmp_path, [])
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(files.certificate, files.key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    served = []

    def serve():
        conn, _ = listener.accept()
        with server_context.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"hello " + tls.recv(16))
            served.append(tls.version())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_context = ssl.create_default_context(cafile=str(files.certificate))
    # Python 3.13 turns this on by default; the certificate must satisfy it already.
    client_context.verify_flags |= getattr(ssl, "VERIFY_X509_STRICT", 0)
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client_context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(b"client")
            assert tls.recv(32) == b"hello client"
            peer = tls.getpeercert()
            assert ("DNS", "localhost") in peer["subjectAltName"]
    finally:
        thread.join(10)
        listener.close()
    assert served and served[0].startswith("TLSv1.")


def test_a_client_refuses_a_name_not_in_the_certificate(tmp_path):
    files = ensure_self_signed(tmp_path, [])
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(files.certificate, files.key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        conn, _ = listener.accept()
        try:
            with server_context.wrap_socket(conn, server_side=True):
                pass
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_context = ssl.create_default_context(cafile=str(files.certificate))
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            pytest.raises(ssl.SSLCertVerificationError, match=r"mismatch|doesn't match"),
        ):
            client_context.wrap_socket(raw, server_hostname="not-this-device.example")
    finally:
        thread.join(10)
        listener.close()
