"""Device identity: what the agent signs to prove it holds its enrolled Ed25519 key.

The signed message binds the relay's fresh nonce to the relay's certificate and the claimed
device id, so a signature cannot be replayed to another relay (different certificate), another
session (different nonce) or for another device (different id).
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

AUTH_CONTEXT = b"rmon-tunnel-auth-v1\x00"
NONCE_SIZE = 32


def certificate_fingerprint(cert_der: bytes) -> bytes:
    """SHA-256 of the relay's leaf certificate in DER, as both ends compute it."""
    return hashlib.sha256(cert_der).digest()


def auth_message(nonce: bytes, cert_fingerprint: bytes, device_id: str) -> bytes:
    """The exact bytes the agent signs: context ‖ nonce ‖ certificate fingerprint ‖ device id."""
    return AUTH_CONTEXT + nonce + cert_fingerprint + device_id.encode()


def sign_auth(
    key: Ed25519PrivateKey, nonce: bytes, cert_fingerprint: bytes, device_id: str
) -> bytes:
    """Sign the relay's challenge with the device key."""
    return key.sign(auth_message(nonce, cert_fingerprint, device_id))


def verify_auth(
    public_key_raw: bytes,
    signature: bytes,
    nonce: bytes,
    cert_fingerprint: bytes,
    device_id: str,
) -> bool:
    """Check a challenge signature against the device's registered raw public key."""
    try:
        key = Ed25519PublicKey.from_public_bytes(public_key_raw)
        key.verify(signature, auth_message(nonce, cert_fingerprint, device_id))
    except (InvalidSignature, ValueError):
        return False
    return True


def public_key_raw(key: Ed25519PrivateKey) -> bytes:
    """The 32 raw bytes of the public half, as registered at enrollment."""
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
