"""QIDO-RS benchmark: study, series and instance searches over an index of 100,000 instances, and the
metadata of a 500-instance series, from a live server on SQLite and on PostgreSQL.

Why: searches must stay interactive on an archive of real size (PS3.18 10.6), whichever index database
runs it. Storing 100,000 files through STOW-RS would take longer than the benchmark itself, so the index
is generated straight into the database through `write_instance`, the function ingest calls, from one
real CT header parsed by `parse_instance`: the rows (and any normalised column ingest computes) are
exactly what ingest would write. Every answer is checked against the generated plan (how many studies
a name, ID, date or modality must find, capped by `limit`), so the figures are for correct answers.
Prints one JSON line per case and backend and writes them to bench/results/qido.json.

    .venv/bin/python bench/bench_qido.py [--quick] [--backend sqlite|postgres|both] [--studies N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import orjson
import pydicom
from bench_frames import KeepAliveClient, Tally
from common import (
    REPO_ROOT,
    BenchFailure,
    FoveaServer,
    RssSampler,
    add_server_arguments,
    emit,
    health_rtt_ms,
    latency_fields,
    machine_facts,
    memory_fields,
    percentile_ms,
    server_arguments,
    stop_on_sigterm,
    write_results,
)
from pydicom.data import get_testdata_file
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from app.store.infra.db import create_index_engine, migrate
from app.store.policies import DuplicatePolicy
from app.store.write.index_writer import StoredBlobs, write_instance
from app.store.write.parse import ParsedInstance, parse_instance

DICOM_JSON = "application/dicom+json"
IDENTITY, GZIP = "identity", "gzip"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
LIMIT = 101  # a viewer's first page, plus one to know whether there is more
UID_ROOT = "1.2.826.0.1.3680043.8.498.77."  # pydicom's root; the rest numbers this run's objects

TARGET_STUDY_SEARCH_P95_MS = 30.0
TARGET_METADATA_P50_MS = 50.0  # as bench_frames.py's series_metadata

# A name is "Family^Given": 40 families and 30 given names, some with accents, make 1,200 names.
FAMILIES = (
    *("Müller", "Schmidt", "García", "Martínez", "Dubois", "Lefèvre", "Rossi", "Bianchi", "Nowak"),
    *("Kowalski", "Novák", "Dvořák", "Johansson", "Nielsen", "Søndergaard", "Öztürk", "Şahin"),
    *("Nguyen", "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson"),
    *("Anderson", "Taylor", "Thomas", "Moore", "Martin", "Jackson", "White", "Harris", "Clark"),
    *("Lewis", "Walker", "Young", "King", "Wright"),
)
GIVEN_NAMES = (
    *("Jürgen", "Anna", "José", "María", "François", "Zoë", "Luca", "Giulia", "Piotr", "Agnieszka"),
    *("Jiří", "Lars", "Ingrid", "Ayşe", "Mehmet", "Linh", "John", "Mary", "James", "Patricia"),
    *("Robert", "Jennifer", "Michael", "Linda", "William", "Elizabeth", "David", "Barbara", "Richard"),
    "Susan",
)
MODALITIES = ("CT", "MR", "CR", "US", "PT")
MODALITY_WEIGHTS = (0.35, 0.3, 0.15, 0.1, 0.1)
STUDY_DESCRIPTIONS = (
    *("CT CHEST W/O CONTRAST", "CT ABDOMEN PELVIS W CONTRAST", "MR BRAIN W/WO CONTRAST"),
    *("MR KNEE LEFT", "CR CHEST 2 VIEWS", "US ABDOMEN COMPLETE", "PET/CT WHOLE BODY FDG"),
    *("CT HEAD W/O CONTRAST", "MR LUMBAR SPINE", "CT ANGIO CHEST"),
)
SERIES_DESCRIPTIONS = ("AXIAL 5MM", "AXIAL 1.25MM", "CORONAL MPR", "SAGITTAL T2", "LOCALIZER", "DWI")
FIRST_DAY, DAYS = date(2015, 1, 1), 3652  # study dates spread over ten years


@dataclass(frozen=True)
class Sizes:
    studies: int
    series_per_study: int
    instances_per_series: int
    metadata_instances: int  # the extra series whose metadata is read
    patients: int
    requests: int  # timed requests per case
    warm_ups: int


FULL = Sizes(1000, 4, 25, 500, patients=600, requests=200, warm_ups=20)  # 100,000 + 500 instances
QUICK = Sizes(20, 4, 5, 40, patients=12, requests=20, warm_ups=3)


# --- the plan: who, when, what ------------------------------------------------------------------------


@dataclass(frozen=True)
class PatientPlan:
    patient_id: str
    name: str  # Family^Given
    birth_date: str
    sex: str


@dataclass(frozen=True)
class SeriesPlan:
    uid: str
    modality: str
    number: int
    description: str
    instances: int


@dataclass(frozen=True)
class StudyPlan:
    index: int
    uid: str
    patient: PatientPlan
    study_date: str
    description: str
    series: tuple[SeriesPlan, ...]

    @property
    def modalities(self) -> frozenset[str]:
        return frozenset(series.modality for series in self.series)


@dataclass(frozen=True)
class Plan:
    studies: tuple[StudyPlan, ...]
    metadata_study: StudyPlan  # also in `studies`: its one series has `metadata_instances` instances

    @property
    def instances(self) -> int:
        return sum(series.instances for study in self.studies for series in study.series)

    @property
    def series(self) -> int:
        return sum(len(study.series) for study in self.studies)


def make_plan(sizes: Sizes, seed: int = 5) -> Plan:
    """Patients, studies and series with realistic variety, the same for every run with this seed."""
    rng = np.random.default_rng(seed)
    names = rng.permutation(len(FAMILIES) * len(GIVEN_NAMES))[: sizes.patients]
    patients = [
        PatientPlan(
            patient_id=f"MRN{1_000_003 + 7_919 * index}",
            name=f"{FAMILIES[name // len(GIVEN_NAMES)]}^{GIVEN_NAMES[name % len(GIVEN_NAMES)]}",
            birth_date=(date(1930, 1, 1) + timedelta(days=int(rng.integers(0, 33_000)))).strftime("%Y%m%d"),
            sex=("F", "M")[index % 2],
        )
        for index, name in enumerate(names)
    ]
    studies = []
    for index in range(sizes.studies):
        # every patient has a study; the rest go to patients at random (some have several)
        patient = patients[index] if index < len(patients) else patients[int(rng.integers(len(patients)))]
        modalities = rng.choice(MODALITIES, size=sizes.series_per_study, p=MODALITY_WEIGHTS)
        series = tuple(
            SeriesPlan(
                uid=f"{UID_ROOT}{index + 1}.{number}",
                modality=str(modality),
                number=number,
                description=SERIES_DESCRIPTIONS[int(rng.integers(len(SERIES_DESCRIPTIONS)))],
                instances=sizes.instances_per_series,
            )
            for number, modality in enumerate(modalities, start=1)
        )
        studies.append(study_plan(index, patient, rng, series))
    index = sizes.studies
    metadata_series = SeriesPlan(
        f"{UID_ROOT}{index + 1}.1", "CT", 1, "AXIAL 0.625MM", sizes.metadata_instances
    )
    metadata_study = study_plan(index, patients[0], rng, (metadata_series,))
    return Plan((*studies, metadata_study), metadata_study)


def study_plan(index: int, patient: PatientPlan, rng: Any, series: tuple[SeriesPlan, ...]) -> StudyPlan:
    day = FIRST_DAY + timedelta(days=int(rng.integers(DAYS)))
    description = STUDY_DESCRIPTIONS[int(rng.integers(len(STUDY_DESCRIPTIONS)))]
    return StudyPlan(index, f"{UID_ROOT}{index + 1}", patient, day.strftime("%Y%m%d"), description, series)


# --- the index, written as ingest writes it -----------------------------------------------------------

# Placeholders set in the template header, replaced in its DICOM JSON for each series and instance.
_STUDY_UID, _SERIES_UID, _SOP_UID = "1.2.3.999999999991", "1.2.3.999999999992", "1.2.3.999999999993"
_PLACEHOLDERS = {
    "PatientName": "Xpatnamex^Y",
    "PatientID": "XPIDX",
    "PatientBirthDate": "19000101",
    "StudyDate": "19000102",
    "Modality": "XMODX",
    "StudyDescription": "XSTUDYDESCX",
    "SeriesDescription": "XSERIESDESCX",
    "AccessionNumber": "XACCX",
    "SeriesNumber": 987654322,
    "InstanceNumber": 987654321,
}


@dataclass(frozen=True)
class Template:
    """One real CT header, parsed once by ingest's own parser, to stamp out every instance from."""

    parsed: ParsedInstance
    metadata: bytes  # its DICOM JSON, with the placeholders above

    @classmethod
    def from_ct_small(cls, work: Path) -> Template:
        """CT_small.dcm without its private attributes (a plain CT header of a few kB)."""
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))  # type: ignore[arg-type]
        ds.remove_private_tags()
        ds.SpecificCharacterSet = "ISO_IR 192"  # names with accents, in UTF-8
        ds.StudyInstanceUID, ds.SeriesInstanceUID = _STUDY_UID, _SERIES_UID
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.UID(_SOP_UID)
        for keyword, placeholder in _PLACEHOLDERS.items():
            setattr(ds, keyword, placeholder)
        path = work / "template.dcm"
        ds.save_as(path, enforce_file_format=True)
        parsed = parse_instance(path, work_directory=work)
        path.unlink()
        for placeholder in (*map(str, _PLACEHOLDERS.values()), _STUDY_UID, _SERIES_UID, _SOP_UID):
            if placeholder.encode() not in parsed.metadata_json:
                raise BenchFailure(f"the template's DICOM JSON lacks {placeholder!r}")
        return cls(parsed, parsed.metadata_json)

    def series_metadata(self, study: StudyPlan, series: SeriesPlan) -> bytes:
        """The DICOM JSON of the series' instances, but for the SOP Instance UID and Instance Number."""
        data = self.metadata
        patient = study.patient
        for placeholder, value in (
            (b"987654322", str(series.number)),
            (b"Xpatnamex^Y", _json_text(patient.name)),
            (b"XPIDX", patient.patient_id),
            (b"19000101", patient.birth_date),
            (b"19000102", study.study_date),
            (b"XMODX", series.modality),
            (b"XSTUDYDESCX", _json_text(study.description)),
            (b"XSERIESDESCX", _json_text(series.description)),
            (b"XACCX", f"A{study.index + 1:08d}"),
            (_STUDY_UID.encode(), study.uid),
            (_SERIES_UID.encode(), series.uid),
        ):
            data = data.replace(placeholder, value.encode())
        return data

    def instance(
        self, study: StudyPlan, series: SeriesPlan, series_metadata: bytes, number: int
    ) -> ParsedInstance:
        sop = f"{series.uid}.{number}"
        metadata = series_metadata.replace(b"[987654321]", b"[%d]" % number).replace(
            _SOP_UID.encode(), sop.encode()
        )
        parsed = self.parsed
        patient = dataclasses.replace(
            parsed.patient,
            patient_id=study.patient.patient_id,
            patient_name=study.patient.name,
            patient_birth_date=study.patient.birth_date,
            patient_sex=study.patient.sex,
        )
        return dataclasses.replace(
            parsed,
            sop_instance_uid=sop,
            study_instance_uid=study.uid,
            series_instance_uid=series.uid,
            patient=patient,
            study={
                **parsed.study,
                "study_date": study.study_date,
                "study_description": study.description,
                "accession_number": f"A{study.index + 1:08d}",
            },
            series={
                **parsed.series,
                "modality": series.modality,
                "series_number": series.number,
                "series_description": series.description,
            },
            instance={**parsed.instance, "instance_number": number},
            metadata_json=metadata,
        )


def _json_text(value: str) -> str:
    """`value` as it appears inside a JSON string (the encoder writes UTF-8, not \\u escapes)."""
    return json.dumps(value, ensure_ascii=False)[1:-1]


@dataclass(frozen=True)
class IndexFacts:
    studies: int
    series: int
    instances: int
    patients: int
    metadata_bytes_per_instance: int
    generate_s: float

    def fields(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def generate_index(engine: Engine, plan: Plan, template: Template) -> IndexFacts:
    """Write every planned instance through `write_instance`, one transaction per study."""
    start = time.perf_counter()
    for study in plan.studies:
        with engine.begin() as connection:
            for series in study.series:
                series_metadata = template.series_metadata(study, series)
                for number in range(1, series.instances + 1):
                    parsed = template.instance(study, series, series_metadata, number)
                    blobs = StoredBlobs(f"bench/{parsed.sop_instance_uid}.dcm", None, 40_000)
                    write_instance(connection, parsed, blobs, policy=DuplicatePolicy.REJECT, batch_id=None)
    if engine.dialect.name == "postgresql":  # what autovacuum does within a minute of a bulk load
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
    return IndexFacts(
        studies=len(plan.studies),
        series=plan.series,
        instances=plan.instances,
        patients=len({study.patient.patient_id for study in plan.studies}),
        metadata_bytes_per_instance=len(template.metadata),
        generate_s=round(time.perf_counter() - start, 1),
    )


# --- where the index lives ----------------------------------------------------------------------------


@contextmanager
def sqlite_index(work: Path) -> Iterator[str]:
    yield f"sqlite:///{work / 'data' / 'fovea.db'}"


@contextmanager
def postgres_index(base_url: str) -> Iterator[str]:
    """A fresh schema in the database at `base_url`, dropped afterwards (as tests/conftest.py does)."""
    schema = f"fovea_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{base_url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def postgres_unreachable(url: str) -> str | None:
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except OperationalError as exc:
        return f"PostgreSQL not reachable at {url} ({exc.orig})"
    return None


# --- the cases ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One timed GET and how many DICOM JSON objects its answer must hold."""

    path: str  # under /dicom-web
    expected: int


@dataclass
class Case:
    name: str
    requests: list[Request]
    target_ms: float | None = None
    target_stat: str = "p95_ms"
    coding: str = IDENTITY
    fields: dict[str, Any] = field(default_factory=dict)


def study_search(query: str, matches: int) -> Request:
    return Request(f"/studies?{query}&limit={LIMIT}", min(matches, LIMIT))


def study_cases(plan: Plan, count: int, rng: Any) -> list[Case]:
    """Study searches with `limit=101`, each value drawn anew for every request."""
    studies = plan.studies
    by_name, by_id, by_date, by_modality = [], [], [], []
    for _ in range(count):
        family = FAMILIES[int(rng.integers(len(FAMILIES)))]
        prefix = family[: int(rng.integers(2, 5))]
        matches = sum(study.patient.name.startswith(prefix) for study in studies)
        by_name.append(study_search(f"PatientName={quote(prefix)}*", matches))

        patient = studies[int(rng.integers(len(studies)))].patient
        matches = sum(study.patient.patient_id == patient.patient_id for study in studies)
        by_id.append(study_search(f"PatientID={patient.patient_id}", matches))

        first = FIRST_DAY + timedelta(days=int(rng.integers(DAYS)))
        low, high = (
            first.strftime("%Y%m%d"),
            (first + timedelta(days=int(rng.integers(30, 366)))).strftime("%Y%m%d"),
        )
        matches = sum(low <= study.study_date <= high for study in studies)
        by_date.append(study_search(f"StudyDate={low}-{high}", matches))

        modality = MODALITIES[int(rng.integers(len(MODALITIES)))]
        matching = sum(modality in study.modalities for study in studies)
        offset = LIMIT * int(rng.integers(0, 3)) if matching > 2 * LIMIT else 0  # a viewer paging
        request = study_search(f"ModalitiesInStudy={modality}&offset={offset}", matching - offset)
        by_modality.append(request)
    target = TARGET_STUDY_SEARCH_P95_MS
    return [
        Case("study_patient_name", by_name, target),
        Case("study_patient_id", by_id, target),
        Case("study_date_range", by_date, target),
        Case("study_modalities", by_modality, target),
    ]


def within_study_cases(plan: Plan, count: int, rng: Any) -> list[Case]:
    """The series, then the instances, of studies drawn at random (no target set for these)."""
    regular = plan.studies[:-1]
    picks = [regular[int(index)] for index in rng.integers(len(regular), size=count)]
    series = [Request(f"/studies/{study.uid}/series", len(study.series)) for study in picks]
    instances = [
        Request(f"/studies/{study.uid}/instances", sum(s.instances for s in study.series)) for study in picks
    ]
    return [Case("series_in_study", series), Case("instances_in_study", instances)]


def metadata_cases(plan: Plan, count: int) -> list[Case]:
    """The whole DICOM JSON of the big series, as is and gzipped (PS3.18 10.4.1.1.2)."""
    study = plan.metadata_study
    [series] = study.series
    request = Request(f"/studies/{study.uid}/series/{series.uid}/metadata", series.instances)
    return [
        Case(
            name, [request] * count, TARGET_METADATA_P50_MS, "p50_ms", coding, {"instances": series.instances}
        )
        for name, coding in (("series_metadata", IDENTITY), ("series_metadata_gzip", GZIP))
    ]


def json_objects(content: bytes) -> int | None:
    """How many objects a DICOM JSON array holds; None when the body is not one."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
        return None
    return len(body)


def run_case(server: FoveaServer, case: Case, warm_ups: int) -> dict[str, Any]:
    """The case's requests one after the other over one keep-alive connection, each timed alone."""
    base = f"{server.base_url}/dicom-web"
    headers = {"Accept": DICOM_JSON, "Accept-Encoding": case.coding}
    tally, objects, response_bytes = Tally(), [], []
    with KeepAliveClient() as client:
        rtt = health_rtt_ms(client, server.base_url)
        for request in case.requests[:warm_ups]:
            client.get(base + request.path, headers)
        timed = case.requests[warm_ups:]  # values not asked before (but the metadata's one URL)
        with RssSampler(server.pid) as sampler:
            start = time.perf_counter()
            for request in timed:
                begin = time.perf_counter()
                answer = client.get(base + request.path, headers)
                tally.latencies.append(time.perf_counter() - begin)  # checked after the timer
                tally.wire_bytes += answer.num_bytes_downloaded
                if answer.status_code != 200:
                    tally.non_200 += 1
                    print(f"GET {request.path}: {answer.status_code} {answer.text[:300]}", file=sys.stderr)
                    continue
                found = json_objects(answer.content)
                if found != request.expected:
                    tally.bad_payloads += 1
                    print(
                        f"GET {request.path}: {found} objects, {request.expected} expected", file=sys.stderr
                    )
                objects.append(found or 0)
                response_bytes.append(len(answer.content))
            wall = time.perf_counter() - start
        memory = memory_fields(server, sampler)
    stats = latency_fields(tally.latencies, percents=(50, 95))
    meets = None if case.target_ms is None else stats[case.target_stat] <= case.target_ms
    return {
        "case": case.name,
        "n": len(timed),
        "example": f"GET /dicom-web{timed[0].path}",
        "accept_encoding": case.coding,
        "objects_mean": round(float(np.mean(objects)), 1) if objects else 0,
        "response_bytes_mean": round(float(np.mean(response_bytes))) if response_bytes else 0,
        "wire_bytes_mean": tally.wire_bytes // len(timed),
        "wall_s": round(wall, 3),
        **stats,
        "p99_ms": percentile_ms(tally.latencies, 99),
        **case.fields,
        "non_200": tally.non_200,
        "bad_payloads": tally.bad_payloads,
        **memory,
        "baseline": {"health_rtt_p50_ms": rtt},
        "target_ms": case.target_ms,
        "target_stat": case.target_stat if case.target_ms is not None else None,
        "meets_target": meets,
    }


# --- command line -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a tiny index and few requests, for the smoke test"
    )
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--postgres-url", default=POSTGRES_URL, help="database for a fresh schema")
    parser.add_argument("--studies", type=int, help="studies in the index (default 1,000)")
    parser.add_argument("--series-per-study", type=int, help="series per study (default 4)")
    parser.add_argument("--instances-per-series", type=int, help="instances per series (default 25)")
    parser.add_argument("--metadata-instances", type=int, help="instances of the metadata series (500)")
    parser.add_argument("--requests", type=int, help="timed requests per case (default 200)")
    add_server_arguments(parser)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "qido.json")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    overrides = {
        name: getattr(args, name)
        for name in ("studies", "series_per_study", "instances_per_series", "metadata_instances", "requests")
        if getattr(args, name) is not None
    }
    if any(value < 1 for value in overrides.values()) or args.workers < 1:
        parser.error("sizes, --requests and --workers must be at least 1")
    args.sizes = dataclasses.replace(sizes, **overrides)
    return args


def run_backend(
    name: str,
    database_url: str,
    plan: Plan,
    args: argparse.Namespace,
    work: Path,
    results: list[dict[str, Any]],
) -> None:
    """Generate the index at `database_url`, serve it, run every case against it, emit each record."""
    sizes: Sizes = args.sizes
    engine = create_index_engine(database_url)
    try:
        migrate(engine)
        facts = generate_index(engine, plan, Template.from_ct_small(work))
    finally:
        engine.dispose()
    print(f"bench_qido: {name}: {facts.instances} instances indexed in {facts.generate_s} s", file=sys.stderr)
    rng = np.random.default_rng(17)  # the same queries for both back ends
    count = sizes.warm_ups + sizes.requests  # the first ones warm up, untimed
    cases = [
        *study_cases(plan, count, rng),
        *within_study_cases(plan, count, rng),
        *metadata_cases(plan, count),
    ]
    server_args = server_arguments(args)
    common_fields = {
        "backend": name,
        "index": facts.fields(),
        "quick": args.quick,
        "server_workers": args.workers,
        "server_args": server_args,
        "machine": machine_facts(work),
    }
    env = {"FOVEA_DATABASE_URL": database_url}
    with FoveaServer(work / "data", server_args, env=env) as server:
        for case in cases:
            record = {**run_case(server, case, sizes.warm_ups), **common_fields}
            emit(record, results)
            if record["non_200"] or record["bad_payloads"]:
                raise BenchFailure(
                    f"{name} {record['case']}: {record['non_200']} request(s) not 200, "
                    f"{record['bad_payloads']} answer(s) with the wrong number of objects"
                )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    plan = make_plan(args.sizes)
    backends: list[tuple[str, Callable[[Path], Any]]] = []
    if args.backend in ("sqlite", "both"):
        backends.append(("sqlite", sqlite_index))
    if args.backend in ("postgres", "both"):
        reason = postgres_unreachable(args.postgres_url)
        if reason:
            print(f"bench_qido: {reason}; PostgreSQL skipped", file=sys.stderr)
        else:
            backends.append(("postgres", lambda _work: postgres_index(args.postgres_url)))
    results: list[dict[str, Any]] = []
    try:
        for name, index in backends:
            work = Path(tempfile.mkdtemp(prefix=f"fovea-bench-qido-{name}-", dir=args.tmp_dir))
            try:
                (work / "data").mkdir()
                with index(work) as database_url:
                    run_backend(name, database_url, plan, args, work, results)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        write_results(results, args.out)
    except BenchFailure as exc:
        print(f"bench_qido: FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
