"""Resident memory after many distinct valid session tokens (issue #7, benchmark 4).

The Descope emulator (on 127.0.0.1, in this process) mints N distinct valid
RS256 session tokens, one per made-up user id, signed with its own key; they
are written to a temporary file. Then, for each cache configuration, a fresh
child process builds a `Core` that trusts the emulator, loads its key set and
calls `Core.validate_session` on every token in turn, reading the file line
by line (so the only thing that can grow is the core). Every `--sample-every`
tokens it records its resident size (VmRSS) and `Core.stats()`'s cache size.

Configurations: the defaults (`session_cache_entries=65536`,
`session_cache_bytes=64 MiB`) and a small bound (`--small-entries`,
`--small-bytes`). The report says where the cache reached its bound and how
much the resident size grew after that.

Minting is the slow part (one RSA-2048 signature per token, about 1-5 ms here):
it runs in a pool of forked workers that inherit the emulator's key before
its server thread starts.

Usage: python scripts/bench_memory.py [--tokens 100000] [--sample-every 10000]
       [--json report.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_ENTRIES = 65536
DEFAULT_BYTES = 64 << 20
MINT_CHUNK = 500

# The emulator whose key the forked minting workers sign with (set before the fork).
_EMULATOR: Any = None
_TEMPLATE: dict[str, Any] = {}


def rss_kib() -> int:
    """This process's resident set size in KiB, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def _mint_chunk(bounds: tuple[int, int]) -> list[str]:
    start, stop = bounds
    tokens = []
    for index in range(start, stop):
        payload = dict(_TEMPLATE, sub=f"U{index:027d}")
        tokens.append(_EMULATOR.sign(payload=payload))
    return tokens


def mint_tokens(emulator: Any, template: dict[str, Any], count: int, path: Path) -> float:
    """Write `count` distinct signed session tokens to `path`; returns seconds taken."""
    global _EMULATOR, _TEMPLATE
    _EMULATOR, _TEMPLATE = emulator, template
    chunks = [(start, min(start + MINT_CHUNK, count)) for start in range(0, count, MINT_CHUNK)]
    started = time.perf_counter()
    context = multiprocessing.get_context("fork")
    with context.Pool(os.cpu_count() or 1) as pool, path.open("w") as out:
        for tokens in pool.imap(_mint_chunk, chunks):
            out.writelines(token + "\n" for token in tokens)
    return time.perf_counter() - started


def child(args: argparse.Namespace) -> None:
    """Validate every token of the file with one Core; print the samples as JSON."""
    from mlflow_descope_auth import _core
    from mlflow_descope_auth.exceptions import AuthenticationError

    core = _core.Core(
        args.project_id,
        base_url=args.base_url,
        session_cache_entries=args.entries,
        session_cache_bytes=args.bytes,
    )
    core.load_keys()
    samples = [{"tokens": 0, "rss_kib": rss_kib(), "cache_entries": 0, "cache_bytes": 0}]
    errors = 0
    seen = 0
    started = time.perf_counter()
    with open(args.tokens_file) as tokens:
        for line in tokens:
            try:
                core.validate_session(line.rstrip("\n"))
            except AuthenticationError:
                errors += 1
            seen += 1
            if seen % args.sample_every == 0:
                stats = core.stats()
                samples.append(
                    {
                        "tokens": seen,
                        "rss_kib": rss_kib(),
                        "cache_entries": stats["session_cache_entries"],
                        "cache_bytes": stats["session_cache_bytes"],
                    }
                )
    elapsed = time.perf_counter() - started
    print(json.dumps({"samples": samples, "errors": errors, "seconds": elapsed}))


def run_config(
    label: str, entries: int, max_bytes: int, emulator: Any, tokens_file: Path, every: int
) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        "--tokens-file",
        str(tokens_file),
        "--base-url",
        emulator.base_url,
        "--project-id",
        emulator.project_id,
        "--entries",
        str(entries),
        "--bytes",
        str(max_bytes),
        "--sample-every",
        str(every),
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=3600)
    result: dict[str, Any] = json.loads(output.stdout)
    samples = result["samples"]
    # Where the cache stopped growing: the first sample whose entry count is
    # not exceeded later (the bound, or simply the end when it was never hit).
    final_entries = samples[-1]["cache_entries"]
    plateau = next(s for s in samples if s["cache_entries"] >= final_entries * 0.98)
    result.update(
        label=label,
        session_cache_entries=entries,
        session_cache_bytes=max_bytes,
        bound_reached_at=plateau["tokens"],
        rss_growth_after_bound_kib=samples[-1]["rss_kib"] - plateau["rss_kib"],
        rss_growth_total_kib=samples[-1]["rss_kib"] - samples[0]["rss_kib"],
        within_bounds=all(
            s["cache_entries"] <= entries and s["cache_bytes"] <= max_bytes for s in samples
        ),
    )
    return result


def print_report(report: dict[str, Any]) -> None:
    out = sys.stderr
    print(
        f"{report['tokens']} distinct tokens minted in {report['mint_seconds']:.1f} s",
        file=out,
    )
    for config in report["configs"]:
        print(
            f"\n[{config['label']}] session_cache_entries={config['session_cache_entries']} "
            f"session_cache_bytes={config['session_cache_bytes']} "
            f"errors={config['errors']} ({config['seconds']:.1f} s)",
            file=out,
        )
        print(f"{'tokens':>8} {'RSS MiB':>8} {'entries':>8} {'cache MiB':>9}", file=out)
        for sample in config["samples"]:
            print(
                f"{sample['tokens']:>8} {sample['rss_kib'] / 1024:>8.1f} "
                f"{sample['cache_entries']:>8} {sample['cache_bytes'] / 2**20:>9.2f}",
                file=out,
            )
        print(
            f"bound reached at {config['bound_reached_at']} tokens; RSS growth after it "
            f"{config['rss_growth_after_bound_kib'] / 1024:.1f} MiB, in all "
            f"{config['rss_growth_total_kib'] / 1024:.1f} MiB; within bounds: "
            f"{config['within_bounds']}",
            file=out,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--sample-every", type=int, default=10_000)
    parser.add_argument("--small-entries", type=int, default=1000)
    parser.add_argument("--small-bytes", type=int, default=1 << 20)
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tokens-file", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--project-id", help=argparse.SUPPRESS)
    parser.add_argument("--entries", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bytes", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0

    from mlflow_descope_auth.testing import DescopeEmulator

    # Long enough for both passes over the tokens, even on a slow machine.
    emulator = DescopeEmulator(session_ttl=4 * 3600)
    user = emulator.create_user("bench-memory", roles=["mlflow-viewer"])
    template = emulator.session_claims(user.user_id)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        tokens_file = Path(tmp) / "tokens.txt"
        # Fork the minting workers before the emulator's server thread exists.
        mint_seconds = mint_tokens(emulator, template, args.tokens, tokens_file)
        with emulator:
            configs = [
                run_config(
                    "default",
                    DEFAULT_ENTRIES,
                    DEFAULT_BYTES,
                    emulator,
                    tokens_file,
                    args.sample_every,
                ),
                run_config(
                    "small",
                    args.small_entries,
                    args.small_bytes,
                    emulator,
                    tokens_file,
                    args.sample_every,
                ),
            ]
    report = {"tokens": args.tokens, "mint_seconds": mint_seconds, "configs": configs}
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(json.dumps(report))
    return 0 if all(config["errors"] == 0 for config in configs) else 1


if __name__ == "__main__":
    sys.exit(main())
