"""Scale-out: three `fovea serve` processes on one PostgreSQL index and one S3 store (moto server), behind
nginx dealing requests round robin, under a bounded mixed load sent only to the balancer.

Six clients each store new instances, replace some of their own, and read them back every way a viewer
does (QIDO-RS, metadata, native and transcoded frames, rendered images), each request landing on
whichever process nginx picks. Afterwards: no 5xx anywhere (nginx's own 502/504 included), every
request answered as expected, the index holds exactly the instances acknowledged, once each, with the
bytes last acknowledged for each, QIDO-RS through the balancer lists them all, and every process served
part of the load.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from pydicom.uid import generate_uid
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.settings import Settings
from app.store.tables import Instance, Series, Study
from tests.conftest import Backend
from tests.dicom_files import make_instance, multipart_body, stow_content_type
from tests.integration.load_balancer import LoadBalancer, round_robin
from tests.integration.server_processes import ServerProcess, start_server
from tests.integration.stow_helpers import stored_bytes
from tests.integration.test_metrics import samples

PROCESSES = 3
CLIENTS = 6
NEW_PER_CLIENT = 6  # instances each client stores
REPLACES_PER_CLIENT = 2  # of its own instances, each stored again with other pixels
STUDIES = 3  # the clients' instances are spread over these (one patient each)
OCTET = "application/octet-stream"
JPEG_LS = "image/jls; transfer-syntax=1.2.840.10008.1.2.4.80"


@dataclass(frozen=True)
class StudyPlan:
    study_uid: str
    series_uid: str
    patient_id: str


@dataclass
class Ledger:
    """What the clients were told: every answer, and the bytes acknowledged last for each instance."""

    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    acknowledged: dict[str, bytes] = field(default_factory=dict)  # SOP Instance UID -> last bytes
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, operation: str, response: httpx.Response, expected: tuple[int, ...]) -> bool:
        with self.lock:
            self.statuses[(operation, response.status_code)] += 1
            if response.status_code not in expected:
                self.unexpected.append(f"{operation}: {response.status_code} {response.text[:300]}")
                return False
        return True


class Client:
    """One client's share of the load, all through the balancer."""

    def __init__(self, number: int, balancer: LoadBalancer, studies: list[StudyPlan], ledger: Ledger) -> None:
        self.number, self.studies, self.ledger = number, studies, ledger
        self.http = httpx.Client(base_url=balancer.dicomweb, timeout=120)
        self.random = random.Random(number)
        self.mine: list[tuple[StudyPlan, str]] = []  # (study, SOP Instance UID) acknowledged

    def run(self) -> None:
        with self.http:
            replaces_left = REPLACES_PER_CLIENT
            for turn in range(NEW_PER_CLIENT):
                study = self.studies[(self.number + turn) % len(self.studies)]
                self.store(study, generate_uid(), seed=self.number * 100 + turn)
                if self.mine:
                    self.read(*self.random.choice(self.mine))
                if turn % 2 == 1 and replaces_left:
                    replaces_left -= 1
                    study, sop = self.mine[self.random.randrange(len(self.mine))]
                    self.store(study, sop, seed=self.number * 100 + 50 + turn, replacing=True)
            for study, sop in self.mine:
                self.read(study, sop)

    def store(self, study: StudyPlan, sop: str, *, seed: int, replacing: bool = False) -> None:
        data = make_instance(
            study_uid=study.study_uid,
            series_uid=study.series_uid,
            sop_uid=sop,
            patient_id=study.patient_id,
            patient_name="Scale^Out",
            seed=seed,
        )
        response = self.http.post(
            "/studies",
            content=multipart_body([data]),
            headers={"Content-Type": stow_content_type(), "Accept": "application/dicom+json"},
        )
        # 200: stored; 202: stored with a warning (B100: it replaced the stored instance)
        if self.ledger.answer("replace" if replacing else "store", response, (202,) if replacing else (200,)):
            with self.ledger.lock:
                self.ledger.acknowledged[sop] = data
            if not replacing:
                self.mine.append((study, sop))

    def read(self, study: StudyPlan, sop: str) -> None:
        instance = f"/studies/{study.study_uid}/series/{study.series_uid}/instances/{sop}"
        answer = self.ledger.answer
        answer("qido", self.http.get("/studies", params={"PatientID": study.patient_id}), (200,))
        answer("qido-instances", self.http.get(f"/studies/{study.study_uid}/instances"), (200,))
        answer("metadata", self.http.get(f"{instance}/metadata"), (200,))
        answer("frame", self.http.get(f"{instance}/frames/1", headers={"Accept": OCTET}), (200,))
        answer("frame-jpeg-ls", self.http.get(f"{instance}/frames/1", headers={"Accept": JPEG_LS}), (200,))
        answer("rendered", self.http.get(f"{instance}/rendered", headers={"Accept": "image/jpeg"}), (200,))


@contextmanager
def running_servers(count: int, settings: Settings, log: Path) -> Iterator[list[ServerProcess]]:
    """`count` server processes started, and later stopped, side by side (each start takes seconds)."""
    with ThreadPoolExecutor(count) as pool:
        starting = [pool.submit(start_server, settings, log) for _ in range(count)]
        servers = [future.result() for future in starting]  # one that failed stops the test
        try:
            yield servers
        finally:
            list(pool.map(ServerProcess.stop, servers))


def dicomweb_requests(server: ServerProcess) -> float:
    """Requests to DICOMweb routes this process answered (its own /metrics; probes not counted)."""
    return sum(
        count
        for (name, labels), count in samples(server.base_url).items()
        if name == "fovea_http_requests_total" and dict(labels)["route"].startswith("/dicom-web")
    )


@pytest.mark.parametrize("backend", ["postgres-s3"], indirect=True)
def test_three_processes_behind_nginx_stay_consistent_under_mixed_load(
    backend: Backend, tmp_path: Path
) -> None:
    settings = backend.settings(ingest_workers=1, codec_workers=1)
    log = tmp_path / "servers.log"
    studies = [StudyPlan(generate_uid(), generate_uid(), f"SCALE-{n}") for n in range(STUDIES)]
    ledger = Ledger()
    with running_servers(PROCESSES, settings, log) as servers:
        with round_robin([server.base_url for server in servers], tmp_path / "nginx") as balancer:
            clients = [Client(number, balancer, studies, ledger) for number in range(CLIENTS)]
            threads = [threading.Thread(target=client.run) for client in clients]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=240)
            assert not any(thread.is_alive() for thread in threads), "the load did not finish"

            served_5xx = {key: count for key, count in ledger.statuses.items() if key[1] >= 500}
            assert served_5xx == {}
            assert ledger.unexpected == []
            stored = CLIENTS * NEW_PER_CLIENT
            assert len(ledger.acknowledged) == stored
            assert (
                sum(c for (op, _), c in ledger.statuses.items() if op == "replace")
                == CLIENTS * REPLACES_PER_CLIENT
            )

            listed = httpx.get(f"{balancer.dicomweb}/instances", params={"limit": 1000}, timeout=60)
            assert listed.status_code == 200
            assert sorted(item["00080018"]["Value"][0] for item in listed.json()) == sorted(
                ledger.acknowledged
            )
            upstreams = balancer.upstreams_used()

        per_process = [dicomweb_requests(server) for server in servers]

    # the index: exactly what was acknowledged, once each, holding the bytes acknowledged last
    with Session(backend.engine) as session:
        uids = session.scalars(select(Instance.sop_instance_uid)).all()
        assert sorted(uids) == sorted(ledger.acknowledged)  # no duplicates, nothing lost or extra
        assert session.scalar(select(func.count()).select_from(Series)) == STUDIES
        assert session.scalar(select(func.count()).select_from(Study)) == STUDIES
    for sop, data in ledger.acknowledged.items():
        assert stored_bytes(backend, sop) == data, f"{sop} does not hold the bytes acknowledged last"

    # every process served part of the load, as nginx dealt it
    assert all(count > 0 for count in per_process), per_process
    ports = {server.base_url.removeprefix("http://") for server in servers}
    assert set(upstreams) >= ports, upstreams
    assert sum(per_process) >= sum(ledger.statuses.values())
