"""Helpers shared by the benchmarks: a live `fovea serve` subprocess, /proc memory and CPU readings, the
HTTP floor (`GET /health`), JSON output.

Why: a server benchmark must measure the real process (uvicorn, worker processes, the folder store on
the real file system), so it starts `fovea serve` the way an operator does and reads its memory from
/proc (Linux only; no psutil). MB means 10^6 bytes everywhere, for throughput and for memory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
MB = 1_000_000


class BenchFailure(RuntimeError):
    """A benchmark could not run or a request failed: the figures would mean nothing."""


def machine_facts(path: Path | None = None) -> dict[str, Any]:
    """What the figures depend on: CPUs, memory, Python, and the file system under `path`."""
    facts: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "mem_total_mb": round(_meminfo_kb("MemTotal") * 1024 / MB),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if path is not None:
        facts["data_fs"] = _file_system_type(path)
    return facts


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _meminfo_kb(field: str) -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _file_system_type(path: Path) -> str:
    """The type of the mount that holds `path` (longest matching mount point in /proc/mounts)."""
    target = str(path.resolve())
    best, kind = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            mount_point = fields[1]
            inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
            if inside and len(mount_point) >= len(best):
                best, kind = mount_point, fields[2]
    except (OSError, IndexError):
        pass
    return kind


# --- memory, from /proc -------------------------------------------------------------------------------


def status_kb(pid: int, field: str) -> int:
    """A `VmRSS`/`VmHWM`-style line of /proc/PID/status in kB (0 once the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (uvicorn worker processes, multiprocessing helpers)."""
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(_children(current))
    return tree


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            found.extend(int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split())
        except (OSError, ValueError):
            continue
    return found


def tree_kb(pids: Sequence[int], field: str) -> int:
    return sum(status_kb(pid, field) for pid in pids)


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of the processes so far (fields 14 and 15 of /proc/PID/stat)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _CLOCK_TICKS


def kb_to_mb(kb: float) -> float:
    return round(kb * 1024 / MB, 1)


def system_cpu_seconds() -> tuple[float, float]:
    """(busy, stolen) CPU time of the whole machine so far, summed over CPUs (/proc/stat).

    Busy is user + nice + system + irq + softirq; stolen is time the hypervisor gave to other guests.
    """
    try:
        with open("/proc/stat") as handle:
            fields = [int(value) for value in handle.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0.0, 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq) / _CLOCK_TICKS, steal / _CLOCK_TICKS


class RssSampler:
    """Samples the summed VmRSS of a process tree (and of this process) every `interval` seconds.

    Also takes the CPU time both used between entering and leaving the block, and what else the machine
    did meanwhile (other processes and kernel threads; time stolen by the hypervisor), to judge noise.

    Why a thread: VmHWM is a lifetime peak per process; growth while one request is served needs the
    resident size just before and its maximum during. Use as a context manager around the measured part.
    """

    def __init__(self, server_pid: int, interval: float = 0.02) -> None:
        self.server_pid = server_pid
        self.interval = interval
        self.pids = process_tree(server_pid)
        self.baseline_kb = tree_kb(self.pids, "VmRSS")
        self.peak_kb = self.baseline_kb
        self.client_baseline_kb = status_kb(os.getpid(), "VmRSS")
        self.client_peak_kb = self.client_baseline_kb
        self.samples = 0
        self.server_cpu_s = self.client_cpu_s = 0.0
        self.other_cpu_s = self.steal_cpu_s = 0.0
        self.process_cpu_s: list[float] = []  # per server process, busiest first (how work was spread)
        self._process_cpu_start: dict[int, float] = {}
        self._cpu_start = (0.0, 0.0, 0.0, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._cpu_start = (cpu_seconds(self.pids), cpu_seconds([os.getpid()]), *system_cpu_seconds())
        self._process_cpu_start = {pid: cpu_seconds([pid]) for pid in self.pids}
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        server_cpu, client_cpu = cpu_seconds(process_tree(self.server_pid)), cpu_seconds([os.getpid()])
        self.server_cpu_s = server_cpu - self._cpu_start[0]
        self.process_cpu_s = sorted(
            (
                cpu_seconds([pid]) - self._process_cpu_start.get(pid, 0.0)
                for pid in process_tree(self.server_pid)
            ),
            reverse=True,
        )
        self.client_cpu_s = client_cpu - self._cpu_start[1]
        busy, steal = system_cpu_seconds()
        self.other_cpu_s = max(0.0, busy - self._cpu_start[2] - self.server_cpu_s - self.client_cpu_s)
        self.steal_cpu_s = steal - self._cpu_start[3]

    def _run(self) -> None:
        refreshed = time.monotonic()
        while not self._stop.wait(self.interval):
            if time.monotonic() - refreshed > 1.0:  # worker processes may be replaced
                self.pids, refreshed = process_tree(self.server_pid), time.monotonic()
            self._sample()

    def _sample(self) -> None:
        self.peak_kb = max(self.peak_kb, tree_kb(self.pids, "VmRSS"))
        self.client_peak_kb = max(self.client_peak_kb, status_kb(os.getpid(), "VmRSS"))
        self.samples += 1


# --- the server ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FoveaServer:
    """`fovea serve` on a free loopback port with its own data folder (SQLite + folder store).

    The caller's FOVEA_* variables are not passed on; `env` sets any the benchmark needs (an index on
    PostgreSQL: FOVEA_DATABASE_URL). Stopped (terminate, then kill) by `stop` or on leaving the `with`
    block, whatever happened.
    """

    def __init__(
        self,
        data_dir: Path,
        extra_args: Sequence[str] = (),
        start_timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.env = dict(env or {})
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.extra_args = list(extra_args)
        self.start_timeout = start_timeout
        self.log_path = data_dir.parent / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise BenchFailure("the server is not running")
        return self.process.pid

    def command(self) -> list[str]:
        console_script = Path(sys.executable).with_name("fovea")
        launcher = (
            [str(console_script)]
            if console_script.exists()
            else [sys.executable, "-c", "from app.cli import main; main()"]
        )
        return [
            *launcher,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--log-level",
            "warning",
            *self.extra_args,
        ]

    def __enter__(self) -> FoveaServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {key: value for key, value in os.environ.items() if not key.startswith("FOVEA_")}
        env.update(self.env)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command(), cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            self._wait_until_healthy()
        except BaseException:
            self.stop()
            raise

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise BenchFailure(
                        f"the server exited with {self.process.returncode}:\n{self.log_tail()}"
                    )
                try:
                    if client.get(f"{self.base_url}/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        raise BenchFailure(
            f"the server did not answer /health in {self.start_timeout:.0f} s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        tree = process_tree(process.pid)
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        for pid in tree[1:]:  # worker processes outliving their supervisor
            if Path(f"/proc/{pid}").exists():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


# --- what every case reports ------------------------------------------------------------------------


def memory_fields(server: FoveaServer, sampler: RssSampler) -> dict[str, Any]:
    """The server's (and this process's) memory and CPU figures over a timed part, as record fields."""
    pids = process_tree(server.pid)
    return {
        "server_processes": len(pids),
        "server_rss_before_mb": kb_to_mb(sampler.baseline_kb),
        "server_rss_after_mb": kb_to_mb(tree_kb(pids, "VmRSS")),
        "server_peak_rss_mb": kb_to_mb(sampler.peak_kb),
        "server_rss_growth_mb": kb_to_mb(sampler.peak_kb - sampler.baseline_kb),
        "server_vmhwm_mb": kb_to_mb(tree_kb(pids, "VmHWM")),
        "client_rss_before_mb": kb_to_mb(sampler.client_baseline_kb),
        "client_peak_rss_mb": kb_to_mb(sampler.client_peak_kb),
        "rss_samples": sampler.samples,
        "server_cpu_s": round(sampler.server_cpu_s, 2),
        "server_cpu_s_by_process": [round(seconds, 2) for seconds in sampler.process_cpu_s],
        "client_cpu_s": round(sampler.client_cpu_s, 2),
        "other_cpu_s": round(sampler.other_cpu_s, 2),
        "steal_cpu_s": round(sampler.steal_cpu_s, 2),
    }


def health_rtt_ms(client: Any, base_url: str, count: int = 50) -> float:
    """Median GET /health round trip: the floor under any request's latency.

    `client` is anything with httpx's `get(url)` returning a response with `raise_for_status()`.
    """
    times = []
    for _ in range(count):
        start = time.perf_counter()
        client.get(f"{base_url}/health").raise_for_status()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 2)


def percentile_ms(seconds: Sequence[float], percent: float) -> float:
    """The `percent` percentile of durations in seconds, in milliseconds (linear interpolation)."""
    ordered = sorted(seconds)
    rank = (len(ordered) - 1) * percent / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return round((ordered[low] + (ordered[high] - ordered[low]) * (rank - low)) * 1000, 2)


def latency_fields(seconds: Sequence[float], percents: Sequence[int] = (50, 90, 99)) -> dict[str, float]:
    """`p50_ms`, `p90_ms`, ... and `max_ms` of request latencies given in seconds."""
    fields = {f"p{percent}_ms": percentile_ms(seconds, percent) for percent in percents}
    fields["max_ms"] = round(max(seconds) * 1000, 2)
    return fields


# --- output -------------------------------------------------------------------------------------------


def emit(record: dict[str, Any], results: list[dict[str, Any]]) -> None:
    """Print one JSON line for a case (flushed at once, so a slow run shows progress)."""
    results.append(record)
    print(json.dumps(record), flush=True)


def write_results(results: list[dict[str, Any]], path: Path) -> None:
    """The same lines as printed, one JSON object per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record) + "\n" for record in results))


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark passes on to its `fovea serve`, and where its files go."""
    parser.add_argument("--workers", type=int, default=1, help="`fovea serve --workers N`")
    parser.add_argument("--server-args", default="", help="more `fovea serve` arguments, one string")
    parser.add_argument("--tmp-dir", type=Path, help="where the data folders go (default: $TMPDIR)")


def server_arguments(args: argparse.Namespace) -> list[str]:
    return ["--workers", str(args.workers), *shlex.split(args.server_args)]


def stop_on_sigterm() -> None:
    """SIGTERM unwinds through the finally blocks too: server stopped, folders removed."""

    def terminate(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)


def run_in_scratch_folder(
    name: str, args: argparse.Namespace, cases: Callable[[Path], Iterable[dict[str, Any]]]
) -> int:
    """Run `cases` in a new folder under `--tmp-dir` (removed afterwards), print each record and write
    them to `args.out`; exit status 1, nothing written, when a case raises BenchFailure."""
    stop_on_sigterm()
    root = Path(tempfile.mkdtemp(prefix=f"fovea-bench-{name}-", dir=args.tmp_dir))
    results: list[dict[str, Any]] = []
    try:
        for record in cases(root):
            emit(record, results)
    except BenchFailure as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
    write_results(results, args.out)
    return 0
