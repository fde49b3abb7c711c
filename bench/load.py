"""What the HTTP benches share: a service as a child process, wrk, and an open-loop generator
that holds a fixed request rate and counts latency from each request's due time."""

import asyncio
import gc
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# Like a browser's or httpx's pool: a connection idle longer than this is not reused, as the
# server (uvicorn: 5 s keep-alive) may be closing it just as a request goes out.
KEEPALIVE_REUSE_SECONDS = 4.0


# --- tools and processes ------------------------------------------------------------------------


def apt_install(package: str) -> None:
    """Install a Debian package for a tool a bench drives (exits with the reason on failure)."""
    print(f"installing {package} from Debian packages ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(
            ["apt-get", "install", "-y", "-q", package],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.exit(f"error: `apt-get install -y {package}` failed ({exc}).")


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    apt_install("wrk")
    path = shutil.which("wrk")
    if not path:
        sys.exit("error: `apt-get install -y wrk` ran but no `wrk` is on PATH.")
    return path


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`python -m <module> serve` as a child process, output to a log file."""

    def __init__(self, module: str, port: int, env: dict[str, str], log: Path, cwd: Path):
        self.port = port
        self.log = log
        self.stop_seconds: float | None = None
        self.returncode: int | None = None
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=cwd,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    async def wait_ready(self, path: str, status: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}") as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited early; log:\n{self.tail()}")
                try:
                    if (await http.get(path)).status_code == status:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout} s; log:\n{self.tail()}")

    def cpu_seconds(self) -> float:
        """User + system CPU of the server and its direct children (uvicorn workers)."""
        pids = [self.process.pid]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                pids.append(int(stat.parent.name))
        ticks = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    async def stop(self, timeout: float = 60) -> None:
        if self.process.poll() is not None:
            self.returncode = self.process.returncode
            return
        started = time.perf_counter()
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.process.wait, timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.stop_seconds = time.perf_counter() - started
        self.returncode = self.process.returncode

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# --- wrk ----------------------------------------------------------------------------------------


@dataclass
class WrkResult:
    output: str
    wrk_rps: float = 0.0  # wrk's own figure: all responses / its whole run (incl. the parked tail)
    complete: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    socket_errors: dict[str, int] = field(default_factory=dict)
    non_2xx_3xx: int = 0
    lua: dict[str, str] = field(default_factory=dict)

    @property
    def sent(self) -> int:
        return int(self.lua["sent"])

    @property
    def answered(self) -> int:
        return int(self.lua["answered"])

    @property
    def redirects(self) -> int:
        return int(self.lua["redirects"])

    @property
    def non3xx(self) -> int:
        return int(self.lua["non3xx"])

    @property
    def server_errors(self) -> int:
        return int(self.lua["server_errors"])

    @property
    def rps(self) -> float:
        """Responses per second of the redirect window (wrk's figure also divides by the tail)."""
        return self.answered / float(self.lua["window"])

    @property
    def errors(self) -> int:
        return sum(self.socket_errors.values()) + self.non3xx


UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def parse_wrk(output: str) -> WrkResult:
    result = WrkResult(output=output)
    if m := re.search(r"Requests/sec:\s+([\d.]+)", output):
        result.wrk_rps = float(m.group(1))
    if m := re.search(r"(\d+) requests in ", output):
        result.complete = int(m.group(1))
    for percent, value, unit in re.findall(
        r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.M
    ):
        ms = float(value) * UNITS_MS[unit]
        if percent == "50":
            result.p50_ms = ms
        else:
            result.p99_ms = ms
    if m := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        result.socket_errors = dict(
            zip(["connect", "read", "write", "timeout"], map(int, m.groups()), strict=True)
        )
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        result.non_2xx_3xx = int(m.group(1))
    if m := re.search(r"^bench: (.*)$", output, re.M):
        result.lua = dict(pair.split("=", 1) for pair in m.group(1).split())
    else:
        raise RuntimeError(f"wrk printed no 'bench:' line; output:\n{output}")
    return result


async def run_wrk(
    wrk: str, port: int, *, script: Path, script_args: list[str], seconds: int, connections: int
) -> WrkResult:
    """`wrk -t2` for `seconds` against 127.0.0.1:`port`, driven by a Lua script that prints a
    `bench: key=value ...` line when done."""
    command = [
        wrk,
        "-t2",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}",
        "--",
        *script_args,
    ]
    completed = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=seconds + 120
    )
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed ({completed.returncode}):\n{completed.stderr}")
    return parse_wrk(completed.stdout + completed.stderr)


# --- fixed-rate load ----------------------------------------------------------------------------


@dataclass
class RateResult:
    scheduled: int
    seconds: float
    elapsed: float = 0.0
    redirects: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    unsent: int = 0  # no free connection REQUEST_TIMEOUT after their due time, or no connect
    abandoned: int = 0  # sent, but no response within REQUEST_TIMEOUT (or the connection broke)
    latencies_ms: list[float] = field(default_factory=list)  # unsent ones count REQUEST_TIMEOUT
    due_s: list[float] = field(default_factory=list)  # each latency's due time, from the start
    service_ms: list[float] = field(default_factory=list)  # written -> answered, answered only
    lag_ms: list[float] = field(default_factory=list)  # how late the generator started each one
    connections: int = 0

    @property
    def responses(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def errors(self) -> int:
        return self.unsent + self.abandoned + self.responses - self.redirects

    def percentile(self, p: float, values: list[float] | None = None) -> float:
        ordered = sorted(self.latencies_ms if values is None else values)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


REQUEST_TIMEOUT = 10.0


class RawConnection:
    """One keep-alive HTTP/1.1 connection; responses must carry Content-Length (ours do)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def fetch(self, raw: bytes) -> tuple[int, bool]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                raise ValueError("chunked responses are not supported by the rate generator")
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length:
            await self.reader.readexactly(length)
        return status, close

    def close(self) -> None:
        self.writer.close()


async def fixed_rate(
    port: int, requests: list[bytes], rate: float, seconds: float, max_connections: int
) -> RateResult:
    """Open loop: request k is due at t0 + k / rate whatever happened before; its latency runs
    from that due time (waiting for a free connection, or a late dispatcher, counts). At most
    `max_connections` requests are in flight; one not answered REQUEST_TIMEOUT after its due
    time is never sent (and counted as that long); a sent one gets REQUEST_TIMEOUT to answer.
    `requests` are whole HTTP/1.1 requests, sent in turn from a fixed random start."""
    total = int(rate * seconds)
    result = RateResult(scheduled=total, seconds=seconds)
    clock = time.perf_counter  # uvloop's loop.time() is cached, in whole milliseconds
    idle: list[tuple[RawConnection, float]] = []
    slots = asyncio.Semaphore(max_connections)
    offset = random.Random(7).randrange(len(requests))

    async def one(k: int, due: float) -> None:
        result.lag_ms.append(max(0.0, clock() - due) * 1000)
        try:
            async with asyncio.timeout(max(0.0, due + REQUEST_TIMEOUT - clock())):
                await slots.acquire()
        except TimeoutError:
            result.unsent += 1
            result.latencies_ms.append(REQUEST_TIMEOUT * 1000)
            result.due_s.append(due - t0)
            return
        connection = None
        while idle and connection is None:
            connection, last_used = idle.pop()
            if clock() - last_used > KEEPALIVE_REUSE_SECONDS:  # the server may be closing it
                connection.close()
                connection = None
        written: float | None = None
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                if connection is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    connection = RawConnection(reader, writer)
                    result.connections += 1
                written = clock()
                status, close = await connection.fetch(requests[(offset + k) % len(requests)])
        except (
            OSError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            ValueError,
        ):
            if written is None:  # could not connect: nothing reached the server
                result.unsent += 1
            else:
                result.abandoned += 1
            result.latencies_ms.append((clock() - due) * 1000)
            result.due_s.append(due - t0)
            if connection is not None:
                connection.close()
            return
        finally:
            slots.release()
        answered = clock()
        result.latencies_ms.append((answered - due) * 1000)
        result.due_s.append(due - t0)
        result.service_ms.append((answered - written) * 1000)
        result.statuses[status] = result.statuses.get(status, 0) + 1
        if 300 <= status < 400:
            result.redirects += 1
        if close:
            connection.close()
        else:
            idle.append((connection, answered))

    tasks = []
    gc.collect()
    gc.disable()  # no collector pauses in the generator while it keeps time
    t0 = clock() + 0.05
    for k in range(total):
        due = t0 + k / rate
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(k, due)))
    try:
        await asyncio.gather(*tasks)
    finally:
        gc.enable()
    result.elapsed = clock() - t0
    for connection, _ in idle:
        connection.close()
    return result
