"""Signing keys, JWT minting and verification for the Descope emulator.

Tokens are built by hand (not with PyJWT's encoder) so that tests can mint
hostile ones: a header may name any `alg` while the signature is made with
the emulator's RSA key, `alg: none` yields an unsigned token, and HS* tokens
are signed with a caller-given secret (the classic key-confusion attack).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import string
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

logger = logging.getLogger(__name__)

_ID_ALPHABET = string.ascii_letters + string.digits
_RSA_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "RS256": hashes.SHA256,
    "RS384": hashes.SHA384,
    "RS512": hashes.SHA512,
}
_HMAC_HASHES: dict[str, Callable[[], Any]] = {
    "HS256": hashlib.sha256,
    "HS384": hashlib.sha384,
    "HS512": hashlib.sha512,
}


def new_id(prefix: str, length: int = 27) -> str:
    """A Descope-looking identifier: a two-letter prefix and base62 characters."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_to_b64url(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class SigningKey:
    """One RSA key pair of the emulated project; prints without its private part."""

    kid: str
    private_key: rsa.RSAPrivateKey = field(repr=False)
    alg: str = "RS256"

    @classmethod
    def generate(cls) -> SigningKey:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(kid=new_id("K", 31), private_key=private_key)

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, str]:
        """The key as Descope publishes it in `/v2/keys/<project>`."""
        numbers = self.public_key.public_numbers()
        return {
            "alg": self.alg,
            "e": _int_to_b64url(numbers.e),
            "kid": self.kid,
            "kty": "RSA",
            "n": _int_to_b64url(numbers.n),
            "use": "sig",
        }

    def public_pem(self) -> bytes:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def rsa_sign(self, signing_input: bytes, alg: str) -> bytes:
        # A header naming a non-RSA alg still gets an RS256 signature: the
        # header is just a value a hostile token can lie about.
        hash_algorithm = _RSA_HASHES.get(alg, hashes.SHA256)()
        return self.private_key.sign(signing_input, padding.PKCS1v15(), hash_algorithm)


class KeyRing:
    """The project's published signing keys; the newest one signs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: list[SigningKey] = [SigningKey.generate()]

    @property
    def current(self) -> SigningKey:
        with self._lock:
            return self._keys[-1]

    def get(self, kid: object) -> SigningKey | None:
        with self._lock:
            return next((key for key in self._keys if key.kid == kid), None)

    def rotate(self, *, keep_old: bool) -> SigningKey:
        new_key = SigningKey.generate()
        with self._lock:
            self._keys = [*self._keys, new_key] if keep_old else [new_key]
        return new_key

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        with self._lock:
            return {"keys": [key.public_jwk() for key in self._keys]}


def encode_jwt(
    header: Mapping[str, Any],
    payload: Mapping[str, Any],
    *,
    key: SigningKey,
    secret: bytes | None = None,
) -> str:
    """Serialize and sign a JWT exactly as the header says, even when it lies.

    `alg: none` gives an empty signature; with `secret` the token is HMAC
    signed (HS256 unless the header names HS384/HS512); otherwise `key`
    signs with RSA (the hash follows RS384/RS512 headers, else SHA-256).
    """
    alg = str(header.get("alg", ""))
    signing_input = (_segment(header) + "." + _segment(payload)).encode("ascii")
    if alg.lower() == "none":
        signature = b""
    elif secret is not None:
        digest = _HMAC_HASHES.get(alg, hashlib.sha256)
        signature = hmac.new(secret, signing_input, digest).digest()
    else:
        signature = key.rsa_sign(signing_input, alg)
    return signing_input.decode("ascii") + "." + b64url(signature)


def _segment(part: Mapping[str, Any]) -> str:
    return b64url(json.dumps(part, separators=(",", ":")).encode("utf-8"))


class TokenRefused(Exception):
    """A token the emulator will not honour; the message names the reason, never the token."""


def verify_jwt(token: str, keys: KeyRing) -> dict[str, Any]:
    """Verify signature and times of a token the emulator issued; return its claims.

    The algorithm comes from the published key, never from the header.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise TokenRefused("malformed token") from error

    key = keys.get(header.get("kid"))
    if key is None:
        raise TokenRefused("unknown signing key (kid)")

    if header.get("alg") != key.alg:
        raise TokenRefused("algorithm does not match the signing key (alg)")

    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.public_key,
            algorithms=[key.alg],
            options={"require": ["exp", "sub"], "verify_aud": False},
        )
    except jwt.ExpiredSignatureError as error:
        raise TokenRefused("token expired (exp)") from error
    except jwt.PyJWTError as error:
        raise TokenRefused("signature or claims invalid") from error
    return claims
