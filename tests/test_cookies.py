"""Session cookies: attributes, lifetimes, chunking and reading them back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from e2e_servers import cookie_attributes
from mlflow_descope_auth import cookies
from mlflow_descope_auth.cookies import CookiePolicy

POLICY = CookiePolicy(path="/", secure=False)
TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


def as_request_cookies(headers: list[str]) -> dict[str, str]:
    """What a browser would send back after receiving `headers` (deletions dropped)."""
    jar = {}
    for header in headers:
        name, value, attributes = cookie_attributes(header)
        if attributes.get("max-age") == "0":
            jar.pop(name, None)
        else:
            jar[name] = value
    return jar


def test_session_cookie_is_httponly_lax_on_the_prefix_path() -> None:
    policy = CookiePolicy(path=cookies.cookie_path("/mlflow"), secure=True)
    [header] = cookies.set_token("DS", "a.b.c", max_age=600, policy=policy)
    name, value, attributes = cookie_attributes(header)
    assert (name, value) == ("DS", "a.b.c")
    assert attributes["path"] == "/mlflow/"
    assert attributes["max-age"] == "600"
    assert attributes["samesite"] == "Lax"
    assert "httponly" in attributes
    assert "secure" in attributes


def test_cookie_without_secure_when_policy_says_so() -> None:
    [header] = cookies.set_token("DS", "a.b.c", max_age=1, policy=POLICY)
    assert "secure" not in cookie_attributes(header)[2]


def test_cookie_path_without_prefix_is_root() -> None:
    assert cookies.cookie_path("") == "/"
    assert cookies.cookie_path("/mlflow/") == "/mlflow/"


@pytest.mark.parametrize(
    ("mode", "scheme", "forwarded", "expected"),
    [
        ("auto", "http", None, False),
        ("auto", "https", None, True),
        ("auto", "http", "https", True),
        ("auto", "http", "https, http", True),
        ("auto", "https", "http", False),
        ("true", "http", None, True),
        ("false", "https", "https", False),
    ],
)
def test_secure_flag_follows_mode_and_forwarded_proto(
    mode: str, scheme: str, forwarded: str | None, expected: bool
) -> None:
    assert cookies.secure_for(mode, scheme, forwarded) is expected


def test_max_age_counts_down_to_exp_and_never_goes_negative() -> None:
    assert cookies.max_age_until(1_000_600, now=1_000_000.5) == 599
    assert cookies.max_age_until(1_000_000, now=1_000_100) == 0


def test_long_token_is_split_into_numbered_chunks_under_the_cookie_limit() -> None:
    token = "x" * 9000
    headers = cookies.set_token("DS", token, max_age=60, policy=POLICY)
    names = [cookie_attributes(h)[0] for h in headers]
    assert names == ["DS.0", "DS.1", "DS.2"]
    assert all(len(h) < 4096 for h in headers)
    assert cookies.read_token(as_request_cookies(headers), "DS") == token


def test_token_growing_into_chunks_clears_the_single_cookie() -> None:
    headers = cookies.set_token("DS", "y" * 5000, max_age=60, policy=POLICY, present=["DS"])
    cleared = [cookie_attributes(h) for h in headers if cookie_attributes(h)[2]["max-age"] == "0"]
    assert [c[0] for c in cleared] == ["DS"]


def test_token_shrinking_back_clears_stale_chunks() -> None:
    headers = cookies.set_token(
        "DS", "short", max_age=60, policy=POLICY, present=["DS.0", "DS.1", "DS.2"]
    )
    jar = {"DS.0": "x", "DS.1": "y", "DS.2": "z"}
    for header in headers:
        name, value, attributes = cookie_attributes(header)
        if attributes["max-age"] == "0":
            del jar[name]
        else:
            jar[name] = value
    assert jar == {"DS": "short"}
    assert cookies.read_token(jar, "DS") == "short"


def test_clearing_a_token_expires_every_part_sent() -> None:
    headers = cookies.clear_token("DSR", policy=POLICY, present=["DSR.0", "DSR.1"])
    cleared = {cookie_attributes(h)[0] for h in headers}
    assert cleared == {"DSR", "DSR.0", "DSR.1"}
    assert all("Max-Age=0" in h and "Expires=Thu, 01 Jan 1970" in h for h in headers)


def test_value_with_cookie_breaking_characters_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot carry"):
        cookies.set_token("DS", "a;b", max_age=60, policy=POLICY)


def test_token_beyond_the_chunk_budget_is_refused() -> None:
    too_long = "z" * (cookies.CHUNK_SIZE * cookies.MAX_CHUNKS + 1)
    with pytest.raises(ValueError, match="too large"):
        cookies.set_token("DS", too_long, max_age=60, policy=POLICY)


def test_cookie_header_parsing_keeps_the_first_duplicate_and_unquotes() -> None:
    parsed = cookies.parse_cookie_header('DS=first; other=1; DS=second; q="quoted"; junk')
    assert parsed == {"DS": "first", "other": "1", "q": "quoted"}


def test_whole_cookie_wins_over_chunks_and_missing_token_is_none() -> None:
    assert cookies.read_token({"DS": "whole", "DS.0": "part"}, "DS") == "whole"
    assert cookies.read_token({"DS.1": "orphan"}, "DS") is None
    assert cookies.read_token({}, "DSR") is None


@given(st.text(alphabet=TOKEN_ALPHABET, min_size=1, max_size=cookies.CHUNK_SIZE * 4))
def test_any_token_round_trips_through_cookies(token: str) -> None:
    headers = cookies.set_token("DSR", token, max_age=60, policy=POLICY)
    assert cookies.read_token(as_request_cookies(headers), "DSR") == token
