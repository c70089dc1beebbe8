"""Fixtures for the emulator tests: one moto server per session, unique resources per test,
worker subprocesses that are always reaped and whose stderr is printed when a test fails."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import emulator  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: longer end-to-end test (still runs in CI; each < ~60 s)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """A moto server (S3, SQS, SNS) on a free port of 127.0.0.1; fails loudly if it does not start in 20 s."""
    log = tmp_path_factory.mktemp("moto") / "moto_server.log"
    try:
        server = emulator.MotoServer(log, start_timeout=20)
    except RuntimeError as e:
        pytest.fail(f"could not start the moto server: {e}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def emu(moto_server) -> emulator.Emulator:
    return emulator.Emulator(moto_server.endpoint)


@pytest.fixture(scope="session")
def trailhouse_bin() -> str:
    """The trailhouse binary ($TRAILHOUSE_BIN, default /work/target/debug/trailhouse); missing → fail, never skip."""
    path = emulator.trailhouse_bin()
    if not Path(path).is_file():
        pytest.fail(f"trailhouse binary not found at {path} (set TRAILHOUSE_BIN)", pytrace=False)
    p = subprocess.run([path, "run", "--help"], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        pytest.fail(f"`{path} run --help` failed ({p.returncode}): the binary has no `run` command?\n"
                    f"{p.stderr[-2000:]}", pytrace=False)
    return path


@pytest.fixture
def workers(request, emu, tmp_path, trailhouse_bin):
    """Factory: workers(queue_url, lake, *args, env=None) → Worker. All are killed at teardown; on failure
    their stderr tails and summaries are printed."""
    started: list[emulator.Worker] = []

    def start(queue_url: str, lake: str, *args: str, env: dict | None = None, **kw) -> emulator.Worker:
        w = emulator.Worker(emu, queue_url, lake, tmp_path / "workers", args=args, env=env, **kw)
        started.append(w)
        return w

    yield start
    failed = any(getattr(request.node, "rep_" + when, None) is not None
                 and getattr(request.node, "rep_" + when).failed for when in ("setup", "call"))
    for w in started:
        was_alive = w.alive()
        w.close()
        if failed:
            print(f"\n===== worker pid {w.pid} ({'killed at teardown' if was_alive else f'exit {w.proc.returncode}'})")
            print(w.stderr_tail(80))
            if w.summary_path.exists():
                print(f"--- summary: {w.summary_path.read_text()}")
