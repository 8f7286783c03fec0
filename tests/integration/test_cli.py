"""The `fovea` command, run as a real process: migrate, import, serve."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydicom.uid import generate_uid
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from app.store.tables import Instance
from tests.conftest import free_port
from tests.dicom_files import make_instance, multipart_body, stow_content_type

FOVEA = [sys.executable, "-c", "from app.cli import main; main()"]


def run_fovea(
    *args: str, env: dict[str, str] | None = None, timeout: int = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FOVEA, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def migrated_with_a_missing_bucket(data_dir: Path, moto_endpoint: str) -> dict[str, str]:
    """Migrate an index in `data_dir`; the settings of a blob store (S3, moto) whose bucket does not exist."""
    assert run_fovea("migrate", "--data-dir", str(data_dir)).returncode == 0
    return {
        "FOVEA_STORAGE_URL": "s3://no-such-bucket",
        "FOVEA_S3_ENDPOINT_URL": moto_endpoint,
        "FOVEA_S3_ACCESS_KEY_ID": "testing",
        "FOVEA_S3_SECRET_ACCESS_KEY": "testing",
    }


def count_instances(data_dir: Path) -> int:
    engine = create_engine(f"sqlite:///{data_dir / 'fovea.db'}")
    with Session(engine) as session:
        count = int(session.scalar(select(func.count()).select_from(Instance)) or 0)
    engine.dispose()
    return count


def test_migrate_creates_the_index(tmp_path: Path) -> None:
    result = run_fovea("migrate", "--data-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
    assert count_instances(tmp_path) == 0


@pytest.fixture
def import_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "incoming"
    (folder / "series-a" / "deeper").mkdir(parents=True)
    study = generate_uid()
    for i in range(3):
        (folder / "series-a" / f"IM{i}").write_bytes(make_instance(study_uid=study, seed=i))
    (folder / "series-a" / "deeper" / "IM9").write_bytes(make_instance(study_uid=study, seed=9))
    (folder / "notes.txt").write_text("not DICOM at all")
    (folder / "cut.dcm").write_bytes(make_instance(rows=128, columns=128)[:20_000])
    (folder / "DICOMDIR").write_bytes(b"skipped by name")
    return folder


def test_import_stores_every_file_and_reports_failures(tmp_path: Path, import_folder: Path) -> None:
    originals = {p: p.read_bytes() for p in import_folder.rglob("*") if p.is_file()}
    data_dir = tmp_path / "data"

    result = run_fovea(
        "import", str(import_folder), "--data-dir", str(data_dir), "--jobs", "2", env={"COLUMNS": "400"}
    )

    assert result.returncode == 1  # some files failed
    assert count_instances(data_dir) == 4
    output = " ".join(result.stderr.split())  # the summary table, whatever the terminal width
    assert "notes.txt" in output and "not a DICOM Part 10 file: no 'DICM' marker" in output
    assert "force=True" not in output  # pydicom's advice to programmers is not shown
    assert "cut.dcm" in output and "truncated" in output
    assert "DICOMDIR" not in output
    assert {p: p.read_bytes() for p in originals} == originals  # originals untouched
    spool = data_dir / "blobs" / ".spool"
    assert [p for p in spool.rglob("*") if p.is_file() and p.name != ".lock"] == []  # no copy left behind


def test_import_of_clean_folder_exits_zero(tmp_path: Path) -> None:
    folder = tmp_path / "clean"
    folder.mkdir()
    for i in range(2):
        (folder / f"{i}.dcm").write_bytes(make_instance(seed=i))
    result = run_fovea("import", str(folder), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 0, result.stderr
    assert count_instances(tmp_path / "data") == 2


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`fovea serve` with flags that must win over contradicting FOVEA_* variables."""
    port, decoy_port = free_port(), free_port()
    data_dir = tmp_path / "flag-data"
    env = {
        "FOVEA_PORT": str(decoy_port),
        "FOVEA_DATA_DIR": str(tmp_path / "env-data"),
        "FOVEA_DUPLICATE_POLICY": "reject",
    }
    process = subprocess.Popen(
        [*FOVEA, "serve", "--port", str(port), "--data-dir", str(data_dir), "--log-level", "warning"],
        env={**os.environ, **env},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("fovea serve did not start")
            time.sleep(0.1)
        yield base, data_dir
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_serve_flags_override_environment(served: tuple[str, Path], tmp_path: Path) -> None:
    base, data_dir = served
    sop = generate_uid()
    body = multipart_body([make_instance(sop_uid=sop)])
    headers = {"Content-Type": stow_content_type()}

    first = httpx.post(f"{base}/dicom-web/studies", content=body, headers=headers)
    again = httpx.post(f"{base}/dicom-web/studies", content=body, headers=headers)

    assert first.status_code == 200
    assert again.status_code == 409  # FOVEA_DUPLICATE_POLICY=reject from the environment applies
    assert count_instances(data_dir) == 1  # --data-dir won over FOVEA_DATA_DIR
    assert not (tmp_path / "env-data").exists()


def test_a_bad_setting_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    result = run_fovea("migrate", "--data-dir", str(tmp_path), env={"FOVEA_PORT": "abc"})
    assert result.returncode == 2
    assert result.stderr.startswith("fovea: FOVEA_PORT='abc' is not allowed: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "fovea.db").exists()


def test_version_and_config_check(tmp_path: Path) -> None:
    version = run_fovea("--version")
    assert version.returncode == 0 and version.stdout.startswith("fovea 0.")
    env = {
        "FOVEA_DATABASE_URL": "postgres://fovea:hunter2@db.example.org/pacs",
        "FOVEA_S3_SECRET_ACCESS_KEY": "hunter3",
        "FOVEA_QIDO_MAX_RESULTS": "50",
        "FOVEA_QIDO_MAX_RESULT": "5",
    }
    check = run_fovea("config", "check", "--data-dir", str(tmp_path), env=env)
    assert check.returncode == 0, check.stderr
    lines = check.stdout.splitlines()
    assert "FOVEA_DATABASE_URL=postgresql+psycopg://fovea:***@db.example.org/pacs" in lines
    assert "FOVEA_S3_SECRET_ACCESS_KEY=********" in lines
    assert "FOVEA_QIDO_MAX_RESULTS=50" in lines
    assert f"FOVEA_STORAGE_URL={tmp_path.resolve()}/blobs" in lines
    assert "hunter" not in check.stdout + check.stderr
    assert (
        "fovea: warning: FOVEA_QIDO_MAX_RESULT is not a Fovea setting and is ignored "
        "(did you mean FOVEA_QIDO_MAX_RESULTS?)"
    ) in check.stderr.splitlines()


def _start_in_own_group(tmp_path: Path, port: int) -> subprocess.Popen[str]:
    """`fovea serve` in a process group of its own, as a terminal runs it (Ctrl-C reaches the group)."""
    return subprocess.Popen(
        [*FOVEA, "serve", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        env={**os.environ, "FOVEA_INGEST_WORKERS": "2", "FOVEA_SHUTDOWN_GRACE_SECONDS": "20"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_until_ready(base: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("fovea serve did not start")
        time.sleep(0.1)


def test_ctrl_c_stops_the_whole_process_group_without_tracebacks(tmp_path: Path) -> None:
    port = free_port()
    process = _start_in_own_group(tmp_path, port)
    try:
        _wait_until_ready(f"http://127.0.0.1:{port}", process)
        os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert "Finished server process" in stderr


def test_sigterm_lets_a_request_in_flight_finish(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = _start_in_own_group(tmp_path, port)
    sop = generate_uid()
    body = multipart_body([make_instance(sop_uid=sop)])
    half = len(body) // 2
    sent_first_half = threading.Event()
    resume = threading.Event()
    answers: list[httpx.Response] = []

    def slow_body() -> Iterator[bytes]:
        yield body[:half]
        sent_first_half.set()
        resume.wait(timeout=30)
        yield body[half:]

    def store() -> None:
        headers = {"Content-Type": stow_content_type()}
        answers.append(
            httpx.post(f"{base}/dicom-web/studies", content=slow_body(), headers=headers, timeout=60)
        )

    try:
        _wait_until_ready(base, process)
        client = threading.Thread(target=store)
        client.start()
        assert sent_first_half.wait(timeout=30)
        time.sleep(0.5)  # the request is in the server's hands
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert process.poll() is None  # still finishing the request in flight
        resume.set()
        client.join(timeout=60)
        _, stderr = process.communicate(timeout=30)
    finally:
        resume.set()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert [answer.status_code for answer in answers] == [200]
    assert process.returncode == 0 and "Traceback" not in stderr
    assert "Finished server process" in stderr
    assert count_instances(tmp_path / "data") == 1
