"""Fixtures of the tunnel tests: enrolled device keys."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@pytest.fixture
def device_key() -> Ed25519PrivateKey:
    """A fresh enrolled device key (spec: DEV-10)."""
    return Ed25519PrivateKey.generate()


@pytest.fixture
def other_key() -> Ed25519PrivateKey:
    """Another device's key."""
    return Ed25519PrivateKey.generate()
