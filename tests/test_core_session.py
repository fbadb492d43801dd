"""Session verification against the local Descope emulator: the identity it
yields, every way a token can be wrong (contract §3), the key set's cooldown
and rotation, outages, and the verified-session cache."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.request
from typing import TYPE_CHECKING, Any, Callable

import pytest

from mlflow_descope_auth import _core
from mlflow_descope_auth.exceptions import (
    DescopeRateLimitedError,
    DescopeUnavailableError,
    InvalidTokenError,
    TokenExpiredError,
)

if TYPE_CHECKING:
    from mlflow_descope_auth.testing import DescopeEmulator

pytest.importorskip("mlflow_descope_auth.testing", reason="the emulator branch is not merged")

CoreFactory = Callable[..., _core.Core]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(header: dict[str, Any], payload: dict[str, Any], secret: bytes) -> str:
    message = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = hmac.new(secret, message.encode(), hashlib.sha256).digest()
    return f"{message}.{b64(signature)}"


def refused(core: _core.Core, token: str) -> str:
    with pytest.raises(InvalidTokenError) as raised:
        core.validate_session(token)
    return raised.value.error_message


def test_valid_session_yields_the_identity(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str
) -> None:
    user_id = descope_emulator.get_user(alice).user_id
    session = core.validate_session(descope_emulator.mint_session(alice))

    assert session.user_id == user_id
    assert session.username == user_id
    assert session.email == "alice@example.com"
    assert session.name == "Alice"
    assert session.roles == ["mlflow-editor"]
    assert session.permissions == ["mlflow:read"]
    assert session.tenants == {
        "T1": {"roles": ["mlflow-viewer"], "permissions": []},
        "T2": {"roles": [], "permissions": []},
    }
    assert session.level == "EDIT"
    assert not session.is_admin
    assert session.project_id == descope_emulator.project_id
    assert session.expires_at > time.time()
    assert not session.is_access_key
    assert session.claims()["team"] == "ml"


def test_username_claim_and_dsub(
    make_core: CoreFactory, descope_emulator: DescopeEmulator, alice: str
) -> None:
    core = make_core(username_claim="email")
    token = descope_emulator.mint_session(alice, dsub="U2delegated")

    session = core.validate_session(token)

    assert session.user_id == "U2delegated"
    assert session.username == "alice@example.com"


def test_repr_names_neither_email_nor_token(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str
) -> None:
    token = descope_emulator.mint_session(alice)
    text = repr(core.validate_session(token))

    assert "alice@example.com" not in text
    assert token not in text
    assert "EDIT" in text


@pytest.mark.descope_emulator(issuer_style="project")
def test_bare_project_id_issuer_passes(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str
) -> None:
    assert core.validate_session(descope_emulator.mint_session(alice)).level == "EDIT"


def test_region_host_issuer_passes(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str
) -> None:
    issuer = f"https://api.euc1.descope.com/{descope_emulator.project_id}"
    assert core.validate_session(descope_emulator.mint_session(alice, issuer=issuer))


@pytest.mark.parametrize(
    "issuer",
    [
        "P2SomeOtherProject",
        "https://api.descope.com/P2SomeOtherProject",
        "https://api.descope.com/{project}EVIL",
        "https://api.descope.com/{project}/",
        "{project}EVIL",
    ],
)
def test_foreign_or_look_alike_issuer_fails(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str, issuer: str
) -> None:
    token = descope_emulator.mint_session(
        alice, issuer=issuer.format(project=descope_emulator.project_id)
    )
    assert refused(core, token) == "invalid token: issuer does not match project (iss)"


def test_alg_none_fails(core: _core.Core, descope_emulator: DescopeEmulator, alice: str) -> None:
    token = descope_emulator.sign({"alg": "none"}, descope_emulator.session_claims(alice))
    # The unsigned form has an empty third segment: refused as malformed first.
    assert refused(core, token).endswith("(expected three segments)")
    assert refused(core, token + "c2ln").endswith("unsigned tokens are not accepted (alg)")


def test_hs256_signed_with_the_public_key_fails(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str
) -> None:
    claims = descope_emulator.session_claims(alice)
    header = {"alg": "HS256", "kid": descope_emulator.current_kid, "typ": "JWT"}
    url = f"{descope_emulator.base_url}/v2/keys/{descope_emulator.project_id}"
    with urllib.request.urlopen(url, timeout=5) as answer:
        jwk = json.dumps(json.load(answer)["keys"][0]).encode()

    for secret in (descope_emulator.public_key_pem(), jwk):
        token = hs256(header, claims, secret)
        assert refused(core, token).endswith("symmetric algorithms are not accepted (alg)")


def test_rs512_header_on_an_rs256_key_fails(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str
) -> None:
    token = descope_emulator.mint_session(alice, alg="RS512")
    assert refused(core, token).endswith("algorithm does not match the signing key (alg)")


def test_missing_and_unknown_kid_fail(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str
) -> None:
    claims = descope_emulator.session_claims(alice)
    assert refused(core, descope_emulator.sign({"kid": None}, claims)).endswith("(kid)")
    unknown = descope_emulator.sign({"kid": "not-published"}, claims)
    assert refused(core, unknown).endswith("unknown signing key (kid)")


def test_tampered_payload_and_signature_fail(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str
) -> None:
    header, payload, signature = descope_emulator.mint_session(alice).split(".")
    forged_claims = descope_emulator.session_claims(alice, extra_claims={"roles": ["admin"]})
    forged = b64(json.dumps(forged_claims).encode())
    assert refused(core, f"{header}.{forged}.{signature}").endswith("signature does not verify")

    flipped = bytearray(base64.urlsafe_b64decode(signature + "=="))
    flipped[0] ^= 1
    assert refused(core, f"{header}.{payload}.{b64(bytes(flipped))}").endswith(
        "signature does not verify"
    )


def test_truncated_extra_segment_and_non_base64_tokens_fail(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str
) -> None:
    token = descope_emulator.mint_session(alice)
    header, payload, signature = token.split(".")
    for bad in [
        f"{header}.{payload}",
        f"{header}.{payload}.",
        token[: len(token) // 2],
        f"{token}.{signature}",
        f"{header}.{payload}.{signature}!",
        f"{header}*.{payload}.{signature}",
        f"{header}.{payload[:-3]}@@@.{signature}",
    ]:
        with pytest.raises(InvalidTokenError):
            core.validate_session(bad)


def test_one_megabyte_token_fails_fast(core: _core.Core, descope_emulator: DescopeEmulator) -> None:
    huge = descope_emulator.sign(payload={"pad": "x" * (1 << 20)})
    started = time.monotonic()
    assert refused(core, huge).endswith("token too large")
    assert time.monotonic() - started < 0.5


def test_expiry_beyond_and_within_leeway(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str
) -> None:
    now = int(time.time())
    with pytest.raises(TokenExpiredError) as raised:
        core.validate_session(descope_emulator.mint_session(alice, exp=now - 10, iat=now - 600))
    assert raised.value.error_message == "token expired (exp)"

    within = descope_emulator.mint_session(alice, exp=now - 2, iat=now - 600)
    assert core.validate_session(within).user_id


def test_nbf_and_iat_in_the_future_fail(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str
) -> None:
    now = int(time.time())
    late = descope_emulator.mint_session(alice, nbf=now + 60)
    assert refused(core, late).endswith("(nbf)")
    early = descope_emulator.mint_session(alice, iat=now + 60, exp=now + 600)
    assert refused(core, early).endswith("(iat)")


def test_missing_exp_fails(core: _core.Core, descope_emulator: DescopeEmulator, alice: str) -> None:
    token = descope_emulator.mint_session(alice, drop_claims=("exp",))
    assert refused(core, token).endswith("missing expiry (exp)")


def test_refresh_token_used_as_session_fails(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str
) -> None:
    refresh = descope_emulator.mint_refresh(alice)
    assert refused(core, refresh).endswith("(drn)")
    assert core.validate_refresh(refresh).user_id == descope_emulator.get_user(alice).user_id


@pytest.mark.parametrize(
    ("roles", "expected_roles", "level"),
    [
        ("mlflow-editor", ["mlflow-editor"], "EDIT"),
        ("admin", ["admin"], "MANAGE"),
        (None, [], "READ"),
        ("<missing>", [], "READ"),
    ],
)
def test_odd_roles_shapes(
    core: _core.Core,
    descope_emulator: DescopeEmulator,
    roles: Any,
    expected_roles: list[str],
    level: str,
) -> None:
    descope_emulator.create_user("bob")
    drop = ("roles", "permissions") if roles == "<missing>" else ("permissions",)
    extra = {} if roles == "<missing>" else {"roles": roles}
    token = descope_emulator.mint_session("bob", extra_claims=extra, drop_claims=drop)

    session = core.validate_session(token)

    assert session.roles == expected_roles
    assert session.level == level


def test_tenants_as_a_list_and_with_empty_entries(
    make_core: CoreFactory, descope_emulator: DescopeEmulator
) -> None:
    descope_emulator.create_user("carol", roles=["admin"])
    listed = descope_emulator.mint_session("carol", extra_claims={"tenants": ["T1", {}, 7]})
    empty = descope_emulator.mint_session("carol", extra_claims={"tenants": {"T1": {}}})

    assert make_core().validate_session(listed).tenants == {"T1": {"roles": [], "permissions": []}}
    tenant_core = make_core(tenant="T1", default_permission="EDIT")
    assert tenant_core.validate_session(listed).level == "EDIT"
    assert tenant_core.validate_session(empty).level == "EDIT"
    outsider = make_core(tenant="T9")
    assert outsider.validate_session(listed).level == "NO_PERMISSIONS"


def test_two_hundred_random_kids_cause_at_most_two_key_fetches(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str
) -> None:
    claims = descope_emulator.session_claims(alice)
    for i in range(200):
        with pytest.raises(InvalidTokenError):
            core.validate_session(descope_emulator.sign({"kid": f"random-{i}"}, claims))

    assert descope_emulator.calls("keys") <= 2
    assert core.stats()["key_fetches"] <= 2


def test_rotated_key_is_picked_up(
    make_core: CoreFactory, descope_emulator: DescopeEmulator, alice: str
) -> None:
    core = make_core(key_refetch_cooldown_seconds=0.0)
    assert core.validate_session(descope_emulator.mint_session(alice))

    descope_emulator.rotate_keys(keep_old=True)
    session = core.validate_session(descope_emulator.mint_session(alice))

    assert session.level == "EDIT"
    assert descope_emulator.calls("keys") == 2


def test_a_dropped_key_voids_cached_sessions(
    make_core: CoreFactory, descope_emulator: DescopeEmulator, alice: str
) -> None:
    core = make_core(key_refetch_cooldown_seconds=0.0)
    old = descope_emulator.mint_session(alice)
    core.validate_session(old)

    descope_emulator.rotate_keys(keep_old=False)
    core.validate_session(descope_emulator.mint_session(alice))

    assert refused(core, old).endswith("unknown signing key (kid)")


def test_session_cache_serves_repeats(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str
) -> None:
    token = descope_emulator.mint_session(alice)
    for _ in range(5):
        core.validate_session(token)

    stats = core.stats()
    assert stats["session_cache_hits"] == 4
    assert stats["session_cache_entries"] == 1
    assert stats["session_cache_bytes"] > len(token)


@pytest.mark.parametrize(
    ("fault", "error", "retry_after"),
    [
        ({"status": 500}, DescopeUnavailableError, None),
        ({"status": 429, "retry_after": 7}, DescopeRateLimitedError, 7),
        ({"hang": 5.0}, DescopeUnavailableError, None),
        ({"close": True}, DescopeUnavailableError, None),
    ],
)
def test_key_set_outage_is_unavailable_in_bounded_time(
    core: _core.Core,
    descope_emulator: DescopeEmulator,
    alice: str,
    fault: dict[str, Any],
    error: type[Exception],
    retry_after: int | None,
) -> None:
    descope_emulator.set_fault("keys", **fault)
    started = time.monotonic()

    with pytest.raises(error) as raised:
        core.validate_session(descope_emulator.mint_session(alice))

    assert time.monotonic() - started < 2.5
    if retry_after is not None:
        assert getattr(raised.value, "retry_after", None) == retry_after


def test_cached_keys_keep_working_while_descope_is_down(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str
) -> None:
    core.load_keys()
    descope_emulator.set_fault("keys", status=503)

    fresh = descope_emulator.mint_session(alice)
    assert core.validate_session(fresh, blocking=False).level == "EDIT"


def test_non_blocking_validation_only_blocks_for_the_first_key_load(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str
) -> None:
    token = descope_emulator.mint_session(alice)
    with pytest.raises(_core.WouldBlock):
        core.validate_session(token, blocking=False)

    assert core.load_keys() >= 1
    assert core.validate_session(token, blocking=False).level == "EDIT"


def test_audience_is_checked_like_the_sdk(
    core: _core.Core, descope_emulator: DescopeEmulator, alice: str
) -> None:
    project = descope_emulator.project_id
    own = descope_emulator.mint_session(alice, extra_claims={"aud": [project, "app-1"]})
    other = descope_emulator.mint_session(alice, extra_claims={"aud": "someone-else"})

    assert core.validate_session(own)
    assert core.validate_session(own, audience="app-1")
    assert core.validate_session(other, audience=["x", "someone-else"])
    assert refused(core, other).endswith("(aud)")
    with pytest.raises(InvalidTokenError):
        core.validate_session(own, audience="app-2")


@pytest.mark.parametrize(
    ("roles", "met", "unmet"),
    [
        (["mlflow-viewer"], ["PUBLIC", "AUTHENTICATED", "READ"], ["EDIT", "MANAGE"]),
        (["mlflow-editor"], ["AUTHENTICATED", "READ", "EDIT"], ["MANAGE"]),
        (["admin"], ["READ", "EDIT", "MANAGE"], []),
    ],
)
def test_meets_compares_the_level_with_a_route_requirement(
    core: _core.Core,
    descope_emulator: DescopeEmulator,
    roles: list[str],
    met: list[str],
    unmet: list[str],
) -> None:
    descope_emulator.create_user("ria", roles=roles)
    session = core.validate_session(descope_emulator.mint_session("ria"))

    assert [requirement for requirement in met if session.meets(requirement)] == met
    assert [requirement for requirement in unmet if session.meets(requirement)] == []
    for bad in ("NO_PERMISSIONS", "read", ""):
        with pytest.raises(ValueError, match="requirement"):
            session.meets(bad)


def test_a_project_descope_does_not_know_is_reported_as_a_setting_to_check(
    descope_emulator: DescopeEmulator, alice: str
) -> None:
    # The emulator, like Descope, answers 4xx for another project's key set:
    # the server cannot verify anything (503), and the reason names the
    # settings to check instead of suggesting an outage.
    core = _core.Core(
        "P2NoSuchProject0000", base_url=descope_emulator.base_url, http_timeout_seconds=1.0
    )
    with pytest.raises(DescopeUnavailableError, match="check DESCOPE_PROJECT_ID") as raised:
        core.validate_session(descope_emulator.mint_session(alice))
    assert raised.value.status_code == 503
