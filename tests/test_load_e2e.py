"""Load: a real server with 4 workers under a few hundred concurrent clients (issue 8, §3-§5).

Each client loops for a bounded time over a mix of valid credentials (bearer
session, `DS` cookie, access key as bearer and as Basic, an expired session
with a valid `DSR` that must be refreshed) and garbage (random strings,
forged, expired, wrong-key, unsigned and HMAC-confused JWTs, unknown kids,
bad access keys, junk cookies). Every answer is checked against what the
credential deserves: no 5xx, no garbage let in, no valid credential refused,
403 only where the level says so. The summed RSS of the server's process
group is sampled from /proc; after a warm-up it must stay flat.

`pytest -m load` selects these. `LOAD_SECONDS` (default 30) and
`LOAD_CLIENTS` (default 300) set the run; docs/robustness.md has the long
run's command and figures.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import string
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import aiohttp
import jwt
import pytest

from e2e_helpers import basic_auth, bearer, cookie_header, expired_session
from e2e_servers import SERVER_MODES, RunningServer, ServerPool, descope_env
from mlflow_descope_auth.testing import DescopeEmulator

pytestmark = pytest.mark.load

DURATION = float(os.environ.get("LOAD_SECONDS", "30"))
CLIENTS = int(os.environ.get("LOAD_CLIENTS", "300"))
WORKERS = 4
# Memory is judged after this share of the run (imports, caches and the first
# key-set load settle in it).
WARM_UP_SHARE = 0.3
# Allowed growth of the process group's summed RSS from the end of the warm-up
# to the end of the run: the larger of 15% and 96 MB (4 workers of ~150 MB;
# a leak of one response per request would pass this within seconds).
GROWTH_SHARE = 0.15
GROWTH_FLOOR_MB = 96.0
RNG = secrets.SystemRandom()
EMULATOR_OPTIONS = {"project_id": "P2PluginLoad00001"}
OTHER_KEY = Path(__file__).with_name("keys") / "rsa2048-b.pem"

SEARCH = "/api/2.0/mlflow/experiments/search"
SET_TAG = "/api/2.0/mlflow/runs/set-tag"  # EDIT


@dataclass(frozen=True)
class Request:
    """One request and what it deserves: "ok" (2xx), "denied" (403) or "refused" (401)."""

    kind: str
    path: str
    headers: dict[str, str]
    expect: str
    refreshed: bool = False  # the answer must carry a new `DS` cookie


@dataclass
class Tally:
    requests: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    transport_errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


def random_text(n: int) -> str:
    return "".join(RNG.choices(string.ascii_letters + string.digits + "-_.~+/=", k=n))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Mix:
    """Builds the request mix from one emulator; valid tokens outlive the run."""

    def __init__(self, emu: DescopeEmulator, suffix: str) -> None:
        ttl = int(DURATION) + 600
        emu.create_user(f"lo-editor{suffix}", roles=["mlflow-editor"])
        emu.create_user(f"lo-viewer{suffix}", roles=["mlflow-viewer"])
        self.emu = emu
        self.editor_session = emu.mint_session(f"lo-editor{suffix}", ttl=ttl)
        self.viewer_session = emu.mint_session(f"lo-viewer{suffix}", ttl=ttl)
        self.viewer_refresh = emu.mint_refresh(f"lo-viewer{suffix}", ttl=ttl + 600)
        self.expired = expired_session(emu, f"lo-viewer{suffix}")
        self.access_key = emu.create_access_key(f"lo-bot{suffix}", roles=["mlflow-editor"])
        claims = emu.session_claims(f"lo-editor{suffix}", ttl=ttl)
        self.claims = claims
        other_key = OTHER_KEY.read_bytes()
        self.wrong_key = jwt.encode(
            claims, other_key, algorithm="RS256", headers={"kid": emu.current_kid}
        )
        self.hmac_confused = emu.sign({"alg": "HS256"}, claims, secret=emu.public_key_pem())
        self.unsigned = emu.sign({"alg": "none"}, claims)
        self.refresh_as_session = emu.mint_refresh(f"lo-editor{suffix}")
        parts = self.editor_session.split(".")
        self.tampered = ".".join([parts[0], b64(b'{"sub":"U2root","roles":["admin"]}'), parts[2]])
        self.builders: list[tuple[int, Callable[[], Request]]] = [
            (4, lambda: Request("bearer", SEARCH, bearer(self.editor_session), "ok")),
            (3, lambda: Request("cookie", SEARCH, cookie_header(DS=self.viewer_session), "ok")),
            (2, lambda: Request("viewer-edit", SET_TAG, bearer(self.viewer_session), "denied")),
            (2, lambda: Request("editor-edit", SET_TAG, bearer(self.editor_session), "ok")),
            (3, lambda: Request("access-key", SEARCH, bearer(self.access_key), "ok")),
            (2, lambda: Request("basic-key", SEARCH, basic_auth("bot", self.access_key), "ok")),
            (3, self.refreshing),
            (2, lambda: Request("random", SEARCH, bearer(random_text(40)), "refused")),
            (1, self.random_jwt),
            (1, self.unknown_kid),
            (1, lambda: Request("wrong-key", SEARCH, bearer(self.wrong_key), "refused")),
            (1, lambda: Request("hmac", SEARCH, bearer(self.hmac_confused), "refused")),
            (1, lambda: Request("alg-none", SEARCH, bearer(self.unsigned), "refused")),
            (1, lambda: Request("tampered", SEARCH, bearer(self.tampered), "refused")),
            (1, lambda: Request("dsr-bearer", SEARCH, bearer(self.refresh_as_session), "refused")),
            (1, lambda: Request("expired", SEARCH, bearer(self.expired), "refused")),
            (1, self.bad_access_key),
            (1, self.bad_basic),
            (
                1,
                lambda: Request(
                    "junk-cookie", SEARCH, {"Cookie": f"DS={random_text(60)}"}, "refused"
                ),
            ),
            (1, lambda: Request("nothing", SEARCH, {}, "refused")),
        ]
        self.weights = [weight for weight, _ in self.builders]

    def next(self) -> Request:
        ((_, build),) = RNG.choices(self.builders, weights=self.weights)
        return build()

    def refreshing(self) -> Request:
        headers = cookie_header(DS=self.expired, DSR=self.viewer_refresh)
        return Request("refresh", SEARCH, headers, "ok", refreshed=True)

    def random_jwt(self) -> Request:
        token = ".".join(b64(secrets.token_bytes(n)) for n in (24, 80, 256))
        return Request("random-jwt", SEARCH, bearer(token), "refused")

    def unknown_kid(self) -> Request:
        token = self.emu.sign({"kid": secrets.token_hex(8)}, self.claims)
        return Request("unknown-kid", SEARCH, bearer(token), "refused")

    def bad_access_key(self) -> Request:
        key_id = self.access_key.partition(":")[0]
        guess = f"{key_id}:{secrets.token_urlsafe(32)}"
        return Request("bad-key", SEARCH, bearer(guess), "refused")

    def bad_basic(self) -> Request:
        return Request("bad-basic", SEARCH, basic_auth("bot", random_text(30)), "refused")


def body_for(path: str) -> dict[str, object]:
    if path == SET_TAG:
        # A run that does not exist: an allowed request ends in MLflow's 404,
        # so the load writes nothing.
        return {"run_id": "0" * 32, "key": "k", "value": "v"}
    return {"max_results": 1}


def judge(request: Request, status: int, set_cookie: list[str]) -> str | None:
    """Why this answer is wrong for this request, or None."""
    if request.expect == "ok":
        allowed = 404 if request.path == SET_TAG else 200
        if status != allowed:
            return f"{request.kind}: {status}, expected {allowed}"
        if request.refreshed and not any(c.startswith("DS=") for c in set_cookie):
            return f"{request.kind}: no new DS cookie"
        return None
    expected = 403 if request.expect == "denied" else 401
    if status != expected:
        return f"{request.kind}: {status}, expected {expected}"
    return None


def group_rss_mb(pgid: int) -> float:
    """Summed resident memory of every process in a process group, from /proc."""
    total_pages = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/statm") as f:
                resident = int(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        # Fields after the command (which may hold spaces) start after the last ')'.
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 2 and int(fields[2]) == pgid:
            total_pages += resident
    return total_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class MemorySampler:
    def __init__(self, pgid: int, every: float = 0.5) -> None:
        self.pgid = pgid
        self.every = every
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - start, group_rss_mb(self.pgid)))
            self._stop.wait(self.every)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def client(
    session: aiohttp.ClientSession, server: RunningServer, mix: Mix, deadline: float, tally: Tally
) -> None:
    while time.monotonic() < deadline:
        request = mix.next()
        started = time.monotonic()
        try:
            async with session.post(
                server.url(request.path),
                json=body_for(request.path),
                headers=request.headers,
                allow_redirects=False,
            ) as response:
                text = await response.text()
                status = response.status
                set_cookie = response.headers.getall("Set-Cookie", [])
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            tally.transport_errors.append(f"{request.kind}: {type(exc).__name__}")
            continue
        tally.latencies.append(time.monotonic() - started)
        tally.requests += 1
        tally.by_kind[request.kind] += 1
        tally.statuses[status] += 1
        if status >= 500:
            tally.server_errors.append(f"{request.kind}: {status} {text[:200]}")
        wrong = judge(request, status, set_cookie)
        if wrong:
            tally.wrong.append(wrong)


async def drive(server: RunningServer, mix: Mix, seconds: float, clients: int) -> Tally:
    tally = Tally()
    connector = aiohttp.TCPConnector(limit=clients)
    # Generous: on a shared 2-core machine a few hundred clients queue for tens of seconds.
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        deadline = time.monotonic() + seconds
        await asyncio.gather(
            *(client(session, server, mix, deadline, tally) for _ in range(clients))
        )
    return tally


@pytest.mark.parametrize("mode", SERVER_MODES)
def test_four_workers_under_mixed_load_decide_right_without_5xx_or_growth(
    mlflow_server: ServerPool,
    emu: DescopeEmulator,
    mode: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = mlflow_server.start(descope_env(emu), mode=mode, workers=WORKERS)
    mix = Mix(emu, suffix=f"-{mode}")
    started = time.monotonic()
    with MemorySampler(server.process.pid) as memory:
        tally = asyncio.run(drive(server, mix, DURATION, CLIENTS))
    elapsed = time.monotonic() - started

    samples = memory.samples
    warm = [rss for t, rss in samples if t >= DURATION * WARM_UP_SHARE]
    assert len(warm) >= 4, samples
    baseline = warm[0]
    # The end of the run: the mean of the last 10% of the samples, so one
    # sample taken during a burst of garbage collection does not decide.
    tail = warm[-max(1, len(warm) // 10) :]
    final = sum(tail) / len(tail)
    peak = max(rss for _, rss in samples)
    allowed_growth = max(GROWTH_FLOOR_MB, baseline * GROWTH_SHARE)
    latencies = sorted(tally.latencies)
    p99 = latencies[int(len(latencies) * 0.99)] if latencies else float("nan")
    with capsys.disabled():
        print(
            f"\nload[{mode}]: {tally.requests} requests in {elapsed:.0f} s "
            f"({tally.requests / elapsed:.0f}/s) from {CLIENTS} clients, {WORKERS} workers; "
            f"statuses {dict(sorted(tally.statuses.items()))}; "
            f"5xx {len(tally.server_errors)}, wrong {len(tally.wrong)}, "
            f"transport errors {len(tally.transport_errors)}; p99 {p99:.2f} s; "
            f"RSS after warm-up {baseline:.0f} MB, at end {final:.0f} MB, peak {peak:.0f} MB"
        )
        print(f"load[{mode}] by kind: {dict(sorted(tally.by_kind.items()))}")

    assert tally.server_errors == [], tally.server_errors[:20]
    assert tally.wrong == [], tally.wrong[:20]
    assert tally.transport_errors == [], tally.transport_errors[:20]
    assert len(tally.by_kind) == len(mix.builders), tally.by_kind
    assert tally.requests >= CLIENTS, "the server answered too few requests to judge"
    assert final - baseline <= allowed_growth, (
        f"RSS grew from {baseline:.0f} MB to {final:.0f} MB (allowed {allowed_growth:.0f} MB): "
        f"{samples}"
    )
    assert server.process.poll() is None, server.log()[-4000:]
