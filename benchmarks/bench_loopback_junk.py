"""Does the login callback still get through while the loopback port is under junk?

Run from a checkout with the package installed:

    python benchmarks/bench_loopback_junk.py [--connections 200] [--trials 10]

The callback server (``oauth_core.loopback.CallbackServer``) listens on a free port of
127.0.0.1. A separate process keeps ``--connections`` hostile connections on that port,
in five equal groups, each reconnecting as soon as the server drops it:

- idle: connect and send nothing;
- slowloris: a request head sent one byte at a time (every 50 ms), never finished;
- oversized: a 70 kB header line, or 150 header lines, as fast as the server takes them;
- binary: random bytes, as fast as the server takes them;
- half-open: part of a request line, then the write side shut.

Meanwhile the real browser redirect (``GET /auth/callback?code=…&state=…`` with the right
``Host``) is sent ``--trials`` times, each to a fresh server on the same port, and the
time from starting the request to ``CallbackServer.wait()`` returning the code is taken.
The same is measured with no junk, in the same run. The budget (issue 7): under junk
every trial completes within 1 s. Printed: median and worst of both, and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time

from oauth_core.loopback import CallbackServer

STATE = "bench-state-0123456789abcdefghijklmnopqrstuvwxyz"
PATH = "/auth/callback"
BUDGET = 1.0  # seconds, per trial, under junk
KINDS = ("idle", "slowloris", "oversized", "binary", "half-open")


# -- the junk process ------------------------------------------------------------------


async def _junk_client(kind: str, index: int, port: int, counters: dict[str, int]) -> None:
    """One hostile connection, reopened whenever the server closes it."""
    rng = random.Random(index)
    while True:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)  # between trials the port is briefly closed
            continue
        counters["connects"] += 1
        try:
            if kind == "idle":
                await reader.read()  # until the server gives up on us
            elif kind == "slowloris":
                head = f"GET {PATH}?code=junk HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n" + "X-Slow: a\r\n" * 10_000
                for byte in head:
                    writer.write(byte.encode())
                    await writer.drain()
                    await asyncio.sleep(0.05)
            elif kind == "oversized":
                if index % 2:
                    head = "GET / HTTP/1.1\r\nX-Big: " + "a" * 70_000 + "\r\n\r\n"
                else:
                    head = "GET / HTTP/1.1\r\n" + "".join(f"X-H{i}: v\r\n" for i in range(150)) + "\r\n"
                writer.write(head.encode())
                await writer.drain()
                await reader.read()
            elif kind == "binary":
                while True:
                    writer.write(rng.randbytes(4096))
                    await writer.drain()
            elif kind == "half-open":
                writer.write(b"GET /auth/cal")
                await writer.drain()
                writer.write_eof()
                await reader.read()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
        await asyncio.sleep(0)


async def _junk_main(port: int, connections: int) -> None:
    counters = {"connects": 0}
    tasks = [asyncio.create_task(_junk_client(KINDS[i % len(KINDS)], i, port, counters))
             for i in range(connections)]
    while counters["connects"] < connections:
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    await asyncio.gather(*tasks)


def junk_worker(port: int, connections: int) -> None:
    asyncio.run(_junk_main(port, connections))


def start_junk(port: int, connections: int) -> subprocess.Popen[str]:
    """The junk generator in its own process, so it competes for the CPU, not for our GIL."""
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--junk-worker", str(port), str(connections)],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise SystemExit("the junk generator did not start")
    return proc


# -- the measurement -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def callback_once(port: int, settle: float = 0.0, timeout: float = 30.0) -> float:
    """Seconds from sending the real callback to ``wait()`` returning its code.

    ``settle``: seconds between starting the server and sending the callback (the time
    the junk has to fill the new server's port).
    """
    server = CallbackServer(path=PATH, state=STATE, ports=[port], cancel_stale=False)
    server.start()
    try:
        time.sleep(settle)
        code = f"code-{random.getrandbits(64):x}"
        errors: list[BaseException] = []

        def browser() -> None:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
                conn.request("GET", f"{PATH}?code={code}&state={STATE}", headers={"Host": f"127.0.0.1:{port}"})
                conn.getresponse().read()
                conn.close()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        started = time.perf_counter()
        thread = threading.Thread(target=browser, daemon=True)
        thread.start()
        result = server.wait(timeout)
        elapsed = time.perf_counter() - started
        thread.join(timeout)
        if result.code != code:
            raise SystemExit("the server returned another code than the one sent")
        if errors:
            raise SystemExit(f"the browser's request failed: {errors[0]!r}")
        return elapsed
    finally:
        server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--settle", type=float, default=1.0, help="seconds of junk before each trial")
    parser.add_argument("--junk-worker", nargs=2, type=int, metavar=("PORT", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.junk_worker:
        junk_worker(*args.junk_worker)
        return 0

    port = free_port()
    quiet = [callback_once(port) for _ in range(args.trials)]

    # Hold a server on the port while the junk connects, then measure trial by trial.
    holder = CallbackServer(path=PATH, state="holder", ports=[port], cancel_stale=False)
    holder.start()
    junk = start_junk(port, args.connections)
    holder.close()
    loaded: list[float] = []
    try:
        for _ in range(args.trials):
            loaded.append(callback_once(port, settle=args.settle))
    finally:
        junk.kill()
        junk.wait()

    q_med, q_max = statistics.median(quiet), max(quiet)
    l_med, l_max = statistics.median(loaded), max(loaded)
    print(f"Callback time-to-result, {args.trials} trials each; Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs; junk: {args.connections} connections ({', '.join(KINDS)}).")
    print(f"  no junk   : median {q_med * 1000:7.2f} ms   worst {q_max * 1000:7.2f} ms")
    print(f"  under junk: median {l_med * 1000:7.2f} ms   worst {l_max * 1000:7.2f} ms")
    print(f"  ratio (junk / no junk): median {l_med / q_med:.2f}x   worst {l_max / q_max:.2f}x")
    verdict = "PASS" if l_max <= BUDGET else "FAIL"
    print(f"  budget: every trial under junk within {BUDGET:.0f} s: {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
