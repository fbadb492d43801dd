"""Writes jwks.json: the public halves of the test keys as a Descope-style key set.

Run from this folder: python make_jwks.py (needs the `cryptography` package).
"""

import base64
import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

KEYS = [
    ("rsa2048.pem", "test-rsa-1", "RS256"),
    ("rsa2048-b.pem", "test-rsa-2", "RS256"),
    ("ec-p256.pem", "test-ec-256", "ES256"),
    ("ec-p384.pem", "test-ec-384", "ES384"),
]


def b64(number: int, length: int) -> str:
    return base64.urlsafe_b64encode(number.to_bytes(length, "big")).rstrip(b"=").decode()


def jwk(path: str, kid: str, alg: str) -> dict[str, str]:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.public_key().public_numbers()
        n_len = (numbers.n.bit_length() + 7) // 8
        return {
            "kty": "RSA",
            "kid": kid,
            "alg": alg,
            "use": "sig",
            "n": b64(numbers.n, n_len),
            "e": b64(numbers.e, 3),
        }
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    point = key.public_key().public_numbers()
    size = (key.curve.key_size + 7) // 8
    crv = {"secp256r1": "P-256", "secp384r1": "P-384"}[key.curve.name]
    return {
        "kty": "EC",
        "kid": kid,
        "alg": alg,
        "use": "sig",
        "crv": crv,
        "x": b64(point.x, size),
        "y": b64(point.y, size),
    }


Path("jwks.json").write_text(json.dumps({"keys": [jwk(*k) for k in KEYS]}, indent=2) + "\n")
