"""Writes the fuzz seed corpus: real and malformed Descope-shaped tokens.

Run from anywhere with PyJWT's dependency `cryptography` installed (the
project's .venv has it): `python fuzz/make_corpus.py`. It replaces
fuzz/corpus/{verify_token,verify_signed,claims_and_levels}/ with fresh seeds
signed by the committed test keys in tests/keys/ (ECDSA signatures differ on
every run; everything else is byte-for-byte the same).

Input formats (see each target's doc comment):
- verify_token: the token text.
- verify_signed: one selector byte (bits 0-1 key, bit 2 refresh), the header
  bytes, a newline, the payload bytes.
- claims_and_levels: two policy bytes, then JSON text.

The 1 MB token of the robustness issue is not a seed (it would raise the
fuzzer's input length to 1 MB and slow every run); it is a unit test in
src/token.rs. A token just over the 16 KiB limit stands in for it here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
from pathlib import Path
from typing import Any, Callable

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ROOT = Path(__file__).resolve().parent
KEYS = ROOT.parent / "tests" / "keys"
PROJECT = "P2FuzzProject0001"  # fuzz/src/lib.rs: PROJECT
ISS = f"https://api.descope.com/{PROJECT}"
IAT = 1_700_000_000  # before the targets' NOW (1_800_000_000) and the wall clock
EXP = 4_000_000_000  # long after both
NOW = 1_800_000_000

# (file, kid, alg, hash, raw signature size for ECDSA or 0 for RSA); the order
# is the targets' key selector.
KEY_FILES = [
    ("rsa2048.pem", "test-rsa-1", "RS256", hashes.SHA256, 0),
    ("rsa2048-b.pem", "test-rsa-2", "RS256", hashes.SHA256, 0),
    ("ec-p256.pem", "test-ec-256", "ES256", hashes.SHA256, 32),
    ("ec-p384.pem", "test-ec-384", "ES384", hashes.SHA384, 48),
]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def load_signers() -> list[Callable[[bytes], bytes]]:
    signers = []
    for name, _kid, _alg, digest, size in KEY_FILES:
        key = serialization.load_pem_private_key((KEYS / name).read_bytes(), password=None)

        def sign(message: bytes, key: Any = key, digest: Any = digest, size: int = size) -> bytes:
            if isinstance(key, rsa.RSAPrivateKey):
                return key.sign(message, padding.PKCS1v15(), digest())
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise TypeError("a test key is neither RSA nor EC")
            r, s = decode_dss_signature(key.sign(message, ec.ECDSA(digest())))
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")

        signers.append(sign)
    return signers


SIGNERS = load_signers()


def header(key: int = 0, **extra: Any) -> dict[str, Any]:
    _file, kid, alg, _digest, _size = KEY_FILES[key]
    return {"alg": alg, "kid": kid, "typ": "JWT", **extra}


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sub": "U2fuzzuser",
        "iss": ISS,
        "iat": IAT,
        "exp": EXP,
        "drn": "DS",
        "amr": ["email"],
        "email": "fuzz@example.com",
        "roles": ["mlflow-editor"],
        "permissions": [],
        "tenants": {},
    }
    base.update(overrides)
    return base


def token(head: bytes | dict[str, Any], body: bytes | dict[str, Any], key: int = 0) -> str:
    head_bytes = head if isinstance(head, bytes) else compact(head)
    body_bytes = body if isinstance(body, bytes) else compact(body)
    message = f"{b64(head_bytes)}.{b64(body_bytes)}"
    return f"{message}.{b64(SIGNERS[key](message.encode()))}"


def nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = [value]
    return value


# Claim sets shared by the signed targets: (name, key, refresh?, header, payload).
def signed_cases() -> list[tuple[str, int, bool, bytes | dict[str, Any], bytes | dict[str, Any]]]:
    big_roles = [f"role-{i:05d}" for i in range(900)] + ["mlflow-viewer"]
    return [
        ("valid-rs256-session", 0, False, header(0), claims()),
        ("valid-rs256-second-key", 1, False, header(1), claims(roles=["mlflow-viewer"])),
        ("valid-es256-session", 2, False, header(2), claims(permissions=["mlflow:read"])),
        ("valid-es384-session", 3, False, header(3), claims(roles=["admin"])),
        ("valid-refresh", 0, True, header(0), claims(drn="DSR", roles=None)),
        ("refresh-as-session", 0, False, header(0), claims(drn="DSR")),
        ("session-as-refresh", 0, True, header(0), claims()),
        ("expired", 0, False, header(0), claims(exp=NOW - 600, iat=NOW - 1200)),
        ("expired-within-leeway", 0, False, header(0), claims(exp=NOW - 4)),
        ("nbf-future", 0, False, header(0), claims(nbf=NOW + 60)),
        ("iat-future", 2, False, header(2), claims(iat=NOW + 60)),
        ("iat-float", 2, False, header(2), claims(iat=IAT + 0.5, exp=EXP + 0.25)),
        ("exp-as-string", 0, False, header(0), claims(exp=str(EXP))),
        ("exp-huge", 2, False, header(2), claims(exp=18446744073709551615)),
        ("exp-negative", 2, False, header(2), claims(exp=-1)),
        ("exp-exponent", 2, False, header(2), claims(exp=4e9, nbf=-1e300)),
        ("exp-missing", 2, False, header(2), {k: v for k, v in claims().items() if k != "exp"}),
        ("iss-project-id", 2, False, header(2), claims(iss=PROJECT)),
        (
            "iss-region-host",
            2,
            False,
            header(2),
            claims(iss=f"https://api.euc1.descope.com/{PROJECT}"),
        ),
        (
            "iss-look-alike",
            2,
            False,
            header(2),
            claims(iss=f"https://api.descope.com/{PROJECT}EVIL"),
        ),
        ("iss-query", 2, False, header(2), claims(iss=f"https://x/{PROJECT}?a=1")),
        ("iss-list", 2, False, header(2), claims(iss=[ISS])),
        (
            "access-key-session",
            0,
            False,
            header(0),
            claims(sub="K2fuzzaccesskey", dsub="U2fuzzuser", amr=["accesskey"], nsec={"k": 1}),
        ),
        (
            "tenants-object",
            2,
            False,
            header(2),
            claims(
                roles=[],
                tenants={
                    "T1": {"roles": ["mlflow-editor"], "permissions": ["mlflow:read"]},
                    "T2": {"roles": "admin"},
                    "T3": {},
                    "T4": None,
                },
            ),
        ),
        ("tenants-list", 2, False, header(2), claims(tenants=["T1", 3, None, "T2"])),
        ("tenants-string", 2, False, header(2), claims(tenants="T1")),
        ("tenant-only-template", 2, False, header(2), {**claims(dct="T1"), "tenants": None}),
        ("aud-list", 2, False, header(2), claims(aud=["app-1", PROJECT])),
        ("aud-number", 2, False, header(2), claims(aud=7)),
        ("roles-string", 2, False, header(2), claims(roles="mlflow-manager")),
        ("roles-odd", 2, False, header(2), claims(roles=[1, None, ["admin"], {"a": "admin"}])),
        ("permissions-write", 2, False, header(2), claims(permissions="mlflow:write")),
        (
            "unicode",
            2,
            False,
            header(2),
            claims(sub="U2ünï©ødé😀", name="名前", roles=["mlflow-éditor"]),
        ),
        ("numbers-as-strings", 2, False, header(2), claims(iat=str(IAT), nbf="0", exp=str(EXP))),
        ("username-number", 2, False, header(2), claims(email=12345)),
        ("no-subject", 2, False, header(2), claims(sub="", dsub=None)),
        ("deep-nesting", 2, False, header(2), claims(nsec=nested(200))),
        ("huge-claims", 2, False, header(2), claims(roles=big_roles)),
        ("payload-array", 2, False, header(2), b"[1,2,3]"),
        ("payload-not-json", 2, False, header(2), b"\xff\xfe not json"),
        ("payload-duplicate-keys", 2, False, header(2), compact(claims())[:-1] + b',"exp":1}'),
        ("header-alg-mismatch", 0, False, header(0, alg="RS512"), claims()),
        ("header-alg-es-on-rsa", 2, False, header(2, kid="test-rsa-1"), claims()),
        ("header-kid-other-key", 0, False, header(0, kid="test-rsa-2"), claims()),
        ("header-kid-missing", 2, False, {"alg": "ES256"}, claims()),
        ("header-kid-unknown", 2, False, header(2, kid="../../etc/passwd"), claims()),
        ("header-kid-number", 2, False, header(2, kid=7), claims()),
        ("header-crit", 2, False, header(2, crit=["exp"]), claims()),
        ("header-alg-lower", 2, False, header(2, alg="es256"), claims()),
        ("header-alg-list", 2, False, header(2, alg=["ES256"]), claims()),
        ("header-not-object", 2, False, b'["ES256"]', claims()),
        # Found by verify_signed: a byte that is not UTF-8 in a skipped member.
        (
            "header-not-utf8",
            3,
            False,
            b'{"alg":"ES384","kid":"test-ec-384","typ":"J\x80WT"}',
            claims(),
        ),
        (
            "header-deep",
            2,
            False,
            compact({"alg": "ES256", "kid": "test-ec-256", "x": nested(200)}),
            claims(),
        ),
    ]


def verify_token_cases() -> dict[str, bytes]:
    seeds = {
        f"{name}{'-refresh' if refresh else ''}": token(head, body, key).encode()
        for name, key, refresh, head, body in signed_cases()
    }
    good = token(header(0), claims())
    message, _, signature = good.rpartition(".")
    head, _, body = message.partition(".")
    pem = (KEYS / "rsa2048.pub.pem").read_bytes()
    hs256_message = f"{b64(compact(header(0, alg='HS256')))}.{body}"
    hs256 = hmac.new(pem, hs256_message.encode(), hashlib.sha256).digest()
    forged = b64(compact(claims(roles=["admin"])))
    filler = "A" * (16384 - len(head) - len(signature) - 2)
    seeds.update(
        {
            "alg-none": f"{b64(compact({'alg': 'none', 'kid': 'test-rsa-1'}))}.{body}.".encode(),
            "alg-none-with-signature": f"{b64(compact({'alg': 'none'}))}.{body}.c2ln".encode(),
            "hs256-with-public-key": f"{hs256_message}.{b64(hs256)}".encode(),
            "truncated": good[: len(good) // 2].encode(),
            "truncated-signature": good[:-10].encode(),
            "two-segments": message.encode(),
            "extra-segment": f"{good}.extra".encode(),
            "empty-segments": b"..",
            "leading-dot": f".{good}".encode(),
            "non-base64": f"%%%.{body}.{signature}".encode(),
            "padded-base64": f"{head}=.{body}.{signature}".encode(),
            "standard-base64-alphabet": good.replace("-", "+").replace("_", "/").encode(),
            "whitespace": f" {good}\n".encode(),
            "tampered-payload": f"{head}.{forged}.{signature}".encode(),
            "signature-not-base64": f"{message}.!!!".encode(),
            "access-key-shape": b"K2fuzzaccesskeyid:secretpart",
            "bearer-prefix": f"Bearer {good}".encode(),
            "invalid-utf8": b"\xff\xfe." + body.encode() + b".\xc0\xaf",
            "just-over-limit": ("a" * 16385).encode(),
            "at-limit": f"{head}.{filler}.{signature}".encode(),
        }
    )
    return seeds


def verify_signed_cases() -> dict[str, bytes]:
    seeds = {}
    for name, key, refresh, head, body in signed_cases():
        head_bytes = head if isinstance(head, bytes) else compact(head)
        body_bytes = body if isinstance(body, bytes) else compact(body)
        selector = bytes([key | (0b100 if refresh else 0)])
        seeds[f"{name}{'-refresh' if refresh else ''}"] = selector + head_bytes + b"\n" + body_bytes
    return seeds


def claims_and_levels_cases() -> dict[str, bytes]:
    seeds = {}
    # bits: 0-1 default level, 2-3 tenant (0/1 none, 2 T1, 3 T2); more: admin-role mask.
    policies = {
        "read-default": (0b0001, 0b11),
        "tenant-t1": (0b1001, 0b11),
        "odd-admins": (0b0000, 0b111100),
    }
    for name, _key, _refresh, _head, body in signed_cases():
        if isinstance(body, bytes):
            continue
        for policy, (bits, more) in policies.items():
            if policy != "read-default" and not name.startswith(("tenant", "roles", "valid")):
                continue
            seeds[f"{name}-{policy}"] = bytes([bits, more]) + compact(body)
    for name, value in {
        "bare-string": "mlflow-viewer",
        "bare-null": None,
        "bare-number": 12,
        "bare-list": ["admin", "mlflow:manage", 1],
        "bare-object-of-objects": {"T1": {"roles": "admin"}},
        "deep": nested(120),
    }.items():
        seeds[f"{name}-tenant-t1"] = bytes([0b1001, 0b11]) + compact(value)
    return seeds


def main() -> None:
    for target, cases in {
        "verify_token": verify_token_cases(),
        "verify_signed": verify_signed_cases(),
        "claims_and_levels": claims_and_levels_cases(),
    }.items():
        directory = ROOT / "corpus" / target
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        for name, data in cases.items():
            (directory / name).write_bytes(data)
        size = sum(len(data) for data in cases.values())
        print(f"{target}: {len(cases)} seeds, {size} bytes")


if __name__ == "__main__":
    main()
