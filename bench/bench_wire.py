"""Requests per second over loopback: bare Starlette against ConsentMiddleware, side by side.

Run by hand (it needs ``wrk``, ``apt-get install wrk``, and takes about two and a
half minutes, so ``bench/run.py`` leaves it out)::

    .venv/bin/python bench/bench_wire.py
    .venv/bin/python bench/bench_wire.py --duration 10 --connections 64 --rounds 5

Two uvicorn servers (one worker each, ``--no-access-log --log-level warning``;
uvloop and httptools only when both are installed, else uvicorn's asyncio loop
and h11) serve the apps of ``bench/wire_app.py`` on 127.0.0.1: ``bare``, a small
Starlette site, and ``consent``, the same site wrapped in ``ConsentMiddleware``
with the benchmarks' configuration (``_common.CONFIG``). Each scenario's answer is
checked once with urllib first (the banner or the decided visitor's snippet in
the page, the refused cookies' deletions), then ``wrk`` loads each server for one
short warm-up run and ``--rounds`` measured runs, alternating bare, consent, bare,
consent, … so that noise on a shared machine falls on both sides alike. The
figures are the median requests per second of each side and their ratio, and
the server process's CPU time per request (user + system, from ``/proc``), which
other programs on a shared machine disturb less than the wall clock. ``wrk``
runs on the same machine as the server and takes CPU it could otherwise use: the
absolute figures are the pair's, compare the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from _common import PAGE_20K

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HOST = "127.0.0.1"

#: Headers every request sends, to both servers alike (wrk adds ``Host``).
BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36",
    "Accept": "text/html,*/*",
    "Accept-Language": "en-GB,en;q=0.9",
}
#: Refused tracking cookies an undecided visitor's browser still sends.
TRACKERS = "_ga=GA1.1.1; _fbp=fb.1.2; _gid=GA1.2.3"


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    set_cookies: list[str]
    body: bytes


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    path: str
    headers: dict[str, str]
    #: Raises ``AssertionError`` when the consent server's answer is not what it should be.
    check: Callable[[Answer], None]
    #: What the bare server must answer.
    bare_body: bytes


def _deleted(answer: Answer) -> set[str]:
    """The names of the cookies the answer deletes."""
    names = set()
    for header in answer.set_cookies:
        low = header.lower()
        if "max-age=0" in low or "expires=thu, 01 jan 1970" in low:
            names.add(header.split("=", 1)[0].strip())
    return names


def _check_decided_page(a: Answer) -> None:
    assert a.content_type.startswith("text/html"), a.content_type
    assert b"data-consent-root" in a.body, "the decided visitor's snippet is missing"
    assert b"data-consent-banner" not in a.body, "a decided visitor got the banner"
    assert len(a.body) > len(PAGE_20K), "nothing was injected"
    assert not _deleted(a), f"a consented visitor's cookies were deleted: {a.set_cookies}"


def _check_undecided_small(a: Answer) -> None:
    assert a.body == b"ok", a.body[:200]
    deleted = _deleted(a)
    assert {"_ga", "_gid", "_fbp"} <= deleted, f"deletions missing: {a.set_cookies}"


def _check_undecided_page(a: Answer) -> None:
    assert a.content_type.startswith("text/html"), a.content_type
    assert b"data-consent-banner" in a.body, "the banner is missing"
    _check_undecided_small(Answer(a.status, a.content_type, a.set_cookies, b"ok"))


def _check_consented_small(a: Answer) -> None:
    assert a.body == b"ok", a.body[:200]
    assert not _deleted(a), f"a consented visitor's cookies were deleted: {a.set_cookies}"


NAMES = ["decided-page", "undecided-small", "undecided-page", "consented-small"]


def scenarios() -> list[Scenario]:
    # The decided visitor's cookie is signed with the configuration's secret.
    from wire_app import consent_cookie

    decided = {
        **BROWSER,
        "Cookie": f"{consent_cookie('analytics', 'preferences')}; session=abc; _ga=GA1.2.3",
    }
    undecided = {**BROWSER, "Cookie": TRACKERS}
    page = PAGE_20K.encode()
    made = [
        Scenario(
            "decided-page",
            "decided visitor, 20 KB page (snippet injected)",
            "/page",
            decided,
            _check_decided_page,
            page,
        ),
        Scenario(
            "undecided-small",
            "undecided visitor sending 3 refused cookies, small text/plain (3 deletions)",
            "/",
            undecided,
            _check_undecided_small,
            b"ok",
        ),
        Scenario(
            "undecided-page",
            "the same visitor, 20 KB page (banner injected + 3 deletions)",
            "/page",
            undecided,
            _check_undecided_page,
            page,
        ),
        Scenario(
            "consented-small",
            "decided visitor, small text/plain (nothing changed)",
            "/",
            decided,
            _check_consented_small,
            b"ok",
        ),
    ]
    assert [s.name for s in made] == NAMES
    return made


def fetch(port: int, path: str, headers: dict[str, str]) -> Answer:
    request = urllib.request.Request(f"http://{HOST}:{port}{path}", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as r:
        return Answer(
            r.status,
            r.headers.get("content-type", ""),
            r.headers.get_all("set-cookie") or [],
            r.read(),
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def fast_impls() -> bool:
    """Whether uvloop and httptools are both installed in this interpreter."""
    return all(importlib.util.find_spec(m) is not None for m in ("uvloop", "httptools"))


@dataclass(frozen=True)
class Server:
    port: int
    pid: int


@contextlib.contextmanager
def uvicorn(app: str, fast: bool) -> Iterator[Server]:
    """``uvicorn wire_app:<app>`` on a free port of 127.0.0.1, killed on leaving."""
    port = _free_port()
    cmd = [
        sys.executable, "-m", "uvicorn", f"wire_app:{app}", "--app-dir", str(HERE),
        "--host", HOST, "--port", str(port),
        "--workers", "1", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    if fast:
        cmd += ["--loop", "uvloop", "--http", "httptools"]
    with tempfile.TemporaryFile() as output:
        # Its own session: Ctrl-C reaches this script only, which then stops the server.
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )

        def failed(why: str) -> SystemExit:
            output.seek(0)
            return SystemExit(f"uvicorn ({app}) {why}:\n{output.read().decode(errors='replace')}")

        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    raise failed(f"exited with {proc.returncode}")
                try:
                    if fetch(port, "/", {}).status == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise failed("did not answer within 30 s")
                time.sleep(0.05)
            # With one worker uvicorn serves in this very process (no supervisor).
            yield Server(port, proc.pid)
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux ``/proc``), or ``None``."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Run:
    rps: float
    #: The server process's CPU time per answered request, in µs (``None`` without /proc).
    cpu_us: float | None


def wrk(server: Server, s: Scenario, duration: int, args: argparse.Namespace) -> Run:
    """One ``wrk`` run against ``server``; exits if any request failed."""
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{duration}s"]
    for name, value in s.headers.items():
        cmd += ["-H", f"{name}: {value}"]
    cmd.append(f"http://{HOST}:{server.port}{s.path}")
    cpu0 = cpu_seconds(server.pid)
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    cpu1 = cpu_seconds(server.pid)
    out = done.stdout
    rate = re.search(r"^Requests/sec:\s*([\d.]+)", out, re.M)
    count = re.search(r"^\s*(\d+) requests in", out, re.M)
    bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    if done.returncode != 0 or rate is None or count is None or int(count[1]) == 0 or bad:
        raise SystemExit(f"wrk failed ({' '.join(cmd)}):\n{out}{done.stderr}")
    if errors is not None:
        # Timeouts or resets under load: the figure still counts answered requests.
        print(f"<!-- {s.name} port {server.port}: {errors[0]} -->", flush=True)
    cpu = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) / int(count[1]) * 1e6
    return Run(float(rate[1]), cpu)


def wrk_version() -> str:
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    first = (done.stdout or done.stderr).splitlines()
    return first[0].split(" Copyright")[0].strip() if first else "wrk (version unknown)"


def compiled() -> str:
    """Whether the servers run the compiled twins (``consent.core._speedups``)."""
    if os.environ.get("CONSENT_PURE_PYTHON"):
        return "no (CONSENT_PURE_PYTHON is set)"
    try:
        built = importlib.util.find_spec("consent.core._speedups") is not None
    except ImportError:
        built = False
    return "yes" if built else "no (consent.core._speedups is not built)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=3, help="seconds per measured wrk run")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of the warm-up run")
    ap.add_argument("--connections", "-c", type=int, default=32, help="wrk connections")
    ap.add_argument("--threads", "-t", type=int, default=1, help="wrk threads")
    ap.add_argument("--rounds", type=int, default=5, help="measured runs per side")
    ap.add_argument("--scenarios", nargs="+", choices=NAMES, default=NAMES, metavar="NAME")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        print(
            "bench_wire.py needs the wrk load generator, which is not installed: "
            "apt-get install wrk",
            file=sys.stderr,
        )
        return 2
    # SIGTERM unwinds like Ctrl-C, so the servers are stopped either way.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    chosen = [s for s in scenarios() if s.name in args.scenarios]
    fast = fast_impls()

    load0 = os.getloadavg()
    with uvicorn("bare", fast) as bare_server, uvicorn("consent", fast) as consent_server:
        servers = {"bare": bare_server, "consent": consent_server}
        # Every scenario's answers first, so a broken setup stops before any load.
        sizes: dict[str, tuple[int, int]] = {}
        for s in chosen:
            a_bare = fetch(bare_server.port, s.path, s.headers)
            a_consent = fetch(consent_server.port, s.path, s.headers)
            try:
                assert a_bare.status == 200 and a_bare.body == s.bare_body, "bare answer"
                assert not a_bare.set_cookies, f"bare set cookies: {a_bare.set_cookies}"
                assert a_consent.status == 200, f"status {a_consent.status}"
                s.check(a_consent)
            except AssertionError as e:
                raise SystemExit(f"scenario {s.name}: unexpected answer: {e}") from None
            sizes[s.name] = (len(a_bare.body), len(a_consent.body))

        impl = "uvloop + httptools" if fast else "asyncio + h11; uvloop/httptools not installed"
        command = "python bench/bench_wire.py " + " ".join(sys.argv[1:])
        print(f"`{command.strip()}`  ")
        print(
            f"{os.cpu_count()} CPU(s) shared by wrk and the server; Python "
            f"{platform.python_version()}, uvicorn {importlib.metadata.version('uvicorn')} "
            f"(1 worker, {impl}), starlette {importlib.metadata.version('starlette')}, "
            f"compiled speedups: {compiled()}; {wrk_version()} -t{args.threads} "
            f"-c{args.connections}; a {args.warmup} s warm-up run per side, then "
            f"{args.rounds} alternating rounds of {args.duration} s per side.",
            flush=True,
        )
        results: dict[str, dict[str, list[Run]]] = {}
        for s in chosen:
            for server in servers.values():
                wrk(server, s, args.warmup, args)
            runs: dict[str, list[Run]] = {"bare": [], "consent": []}
            for _ in range(args.rounds):
                for side, server in servers.items():
                    runs[side].append(wrk(server, s, args.duration, args))
            results[s.name] = runs
    load1 = os.getloadavg()
    print(
        f"Load average (1 min) {load0[0]:.2f} before, {load1[0]:.2f} after "
        "(above 1 means other programs shared the CPU).\n"
    )
    report(chosen, results, sizes)
    return 0


def report(
    chosen: list[Scenario],
    results: dict[str, dict[str, list[Run]]],
    sizes: dict[str, tuple[int, int]],
) -> None:
    """The throughput table, the server-CPU table, and every run's figures."""
    print("### Requests per second (wall clock)\n")
    print(
        "| scenario | bare rps (median) | consent rps (median) | ratio consent/bare "
        "| ratio per round | body bytes bare → consent |"
    )
    print("|---|--:|--:|--:|---|---|")
    for s in chosen:
        bare = [r.rps for r in results[s.name]["bare"]]
        cons = [r.rps for r in results[s.name]["consent"]]
        ratio = statistics.median(cons) / statistics.median(bare)
        per_round = ", ".join(f"{c / b:.2f}" for b, c in zip(bare, cons, strict=True))
        b_size, c_size = sizes[s.name]
        print(
            f"| {s.name} | {statistics.median(bare):,.0f} | {statistics.median(cons):,.0f} "
            f"| **{ratio:.3f}** | {per_round} | {b_size:,} → {c_size:,} |"
        )
    cpu = {
        name: {
            side: [r.cpu_us for r in runs if r.cpu_us is not None] for side, runs in sides.items()
        }
        for name, sides in results.items()
    }
    if all(
        len(xs) == len(results[n][side]) for n, sides in cpu.items() for side, xs in sides.items()
    ):
        # CPU time of the server process alone: less disturbed by other programs
        # than the wall clock (the same reason bench_middleware.py uses process time).
        print("\n### Server CPU time per request (uvicorn process, user + system)\n")
        print(
            "| scenario | bare µs/request (median) | consent µs/request (median) "
            "| overhead µs (median of rounds) | ratio |"
        )
        print("|---|--:|--:|--:|--:|")
        for s in chosen:
            bare, cons = cpu[s.name]["bare"], cpu[s.name]["consent"]
            diff = statistics.median(c - b for b, c in zip(bare, cons, strict=True))
            print(
                f"| {s.name} | {statistics.median(bare):.1f} | {statistics.median(cons):.1f} "
                f"| {diff:+.1f} | {statistics.median(cons) / statistics.median(bare):.3f} |"
            )
    print()
    for s in chosen:
        shown = {
            side: ", ".join(
                f"{r.rps:,.0f}" + ("" if r.cpu_us is None else f" ({r.cpu_us:.0f} µs)")
                for r in runs
            )
            for side, runs in results[s.name].items()
        }
        print(
            f"- `{s.name}`: {s.what}; rps (server CPU µs/request) bare {shown['bare']}; "
            f"consent {shown['consent']}"
        )


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; the servers were stopped", file=sys.stderr)
        sys.exit(130)
