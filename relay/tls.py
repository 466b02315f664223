"""The relay's own certificate authority and server certificate, made on first start.

Self-signed deployments need no outside CA: the relay writes ``tls/ca.pem`` for agents to pin
(``rmon-agent register --relay-ca``) and for browsers to trust. An operator with a real
certificate simply replaces ``server.pem``/``server.key``; agents then use the system store.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 825  # the longest validity browsers accept for a server certificate


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the relay's TLS material."""

    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path


def tls_files(tls_dir: Path) -> TlsFiles:
    """Where each file lives inside the data directory."""
    return TlsFiles(
        tls_dir / "ca.pem", tls_dir / "ca.key", tls_dir / "server.pem", tls_dir / "server.key"
    )


def ensure_tls(tls_dir: Path, hosts: list[str]) -> TlsFiles:
    """Create the CA and a server certificate for ``hosts`` unless they already exist."""
    files = tls_files(tls_dir)
    tls_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not files.ca_cert.exists():
        _write_ca(files)
    if not files.cert.exists() or _missing_hosts(files.cert, hosts):
        _write_server(files, hosts)
    return files


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_private(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Write a private key readable only by the relay's user."""
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _write_ca(files: TlsFiles) -> None:
    """A P-256 CA that signs the relay's server certificates."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rmon relay CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(hours=1))
        .not_valid_after(_now() + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    _write_private(files.ca_key, key)
    files.ca_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _san(hosts: list[str]) -> x509.SubjectAlternativeName:
    """Subject alternative names: IPs as IP entries, the rest as DNS names."""
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _missing_hosts(cert_path: Path, hosts: list[str]) -> bool:
    """True when the existing server certificate does not cover every configured host."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    present = {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    present |= set(san.get_values_for_type(x509.DNSName))
    return not set(hosts) <= present


def _write_server(files: TlsFiles, hosts: list[str]) -> None:
    """A server certificate for ``hosts`` signed by the relay CA."""
    ca_key = serialization.load_pem_private_key(files.ca_key.read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca_cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(hours=1))
        .not_valid_after(_now() + dt.timedelta(days=SERVER_DAYS))
        .add_extension(_san(hosts), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(files.key, key)
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def leaf_der(cert_path: Path) -> bytes:
    """DER of the server certificate, whose hash agents sign into their identity proof."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return cert.public_bytes(serialization.Encoding.DER)
