"""Extended query tags benchmark: back-filling a declared tag over 100,000 stored instances, then study
searches on it from a live server, on SQLite and PostgreSQL.

Why: an administrator declares a tag on an archive that already holds its studies; the back-fill must
finish in minutes and a search on the tag must meet the same goal as the built-in study searches. The
index is bench_qido.py's (generated through `write_instance` from one real CT header), each series given
a Body Part Examined (0018,0015) from a fixed list; the tag is declared at study level and back-filled by
the functions `fovea query-tags add` runs. Every answer is checked against the plan. Prints one JSON line
per case and backend and writes them to bench/results/query_tags.json.

    .venv/bin/python bench/bench_query_tags.py [--quick] [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from bench_qido import (
    FULL,
    POSTGRES_URL,
    QUICK,
    TARGET_STUDY_SEARCH_P95_MS,
    Case,
    Plan,
    SeriesPlan,
    StudyPlan,
    Template,
    generate_index,
    make_plan,
    postgres_index,
    postgres_unreachable,
    run_case,
    sqlite_index,
    study_search,
)
from common import (
    REPO_ROOT,
    BenchFailure,
    FoveaServer,
    add_server_arguments,
    emit,
    machine_facts,
    server_arguments,
    stop_on_sigterm,
    write_results,
)
from sqlalchemy import text

from app.store.infra.db import create_index_engine, migrate
from app.store.query_tags import backfill, declare, parse_declaration

BODY_PARTS = (
    *("CHEST", "ABDOMEN", "PELVIS", "HEAD", "BRAIN", "NECK", "KNEE", "SHOULDER", "LSPINE", "CSPINE"),
    *("HAND", "FOOT", "HEART", "BREAST", "WHOLEBODY", "ANKLE"),
)
_BODY_PART = "XBODYPARTX"


def body_part_of(series: SeriesPlan) -> str:
    """The series' body part: fixed by its UID, so every run and back end has the same."""
    return BODY_PARTS[sum(map(ord, series.uid)) % len(BODY_PARTS)]


@dataclasses.dataclass(frozen=True)
class BodyPartTemplate(Template):
    """bench_qido's template with Body Part Examined in its DICOM JSON, set per series."""

    @classmethod
    def with_body_part(cls, work: Path) -> BodyPartTemplate:
        base = Template.from_ct_small(work)
        metadata = orjson.loads(base.metadata)
        metadata["00180015"] = {"vr": "CS", "Value": [_BODY_PART]}
        return cls(base.parsed, orjson.dumps(dict(sorted(metadata.items()))))

    def series_metadata(self, study: StudyPlan, series: SeriesPlan) -> bytes:
        return (
            super().series_metadata(study, series).replace(_BODY_PART.encode(), body_part_of(series).encode())
        )


def study_matches(plan: Plan, accept: Callable[[str], bool]) -> int:
    return sum(any(accept(body_part_of(series)) for series in study.series) for study in plan.studies)


def extended_tag_cases(plan: Plan, count: int, rng: Any) -> list[Case]:
    """`BodyPartExamined={part}` and `BodyPartExamined={prefix}*` at study level, `limit=101`."""
    exact, prefixed = [], []
    for _ in range(count):
        part = BODY_PARTS[int(rng.integers(len(BODY_PARTS)))]
        exact.append(study_search(f"BodyPartExamined={part}", study_matches(plan, part.__eq__)))
        prefix = part[: int(rng.integers(1, 4))]
        matches = study_matches(plan, lambda value, prefix=prefix: value.startswith(prefix))  # type: ignore[misc]
        prefixed.append(study_search(f"BodyPartExamined={prefix}*", matches))
    target = TARGET_STUDY_SEARCH_P95_MS
    return [Case("study_extended_tag", exact, target), Case("study_extended_tag_prefix", prefixed, target)]


def run_backend(
    name: str,
    database_url: str,
    plan: Plan,
    args: argparse.Namespace,
    work: Path,
    results: list[dict[str, Any]],
) -> None:
    sizes = args.sizes
    engine = create_index_engine(database_url)
    try:
        migrate(engine)
        facts = generate_index(engine, plan, BodyPartTemplate.with_body_part(work))
        start = time.perf_counter()
        key = declare(engine, parse_declaration("BodyPartExamined", "study"))
        key = backfill(engine, key)
        backfill_s = time.perf_counter() - start
        if engine.dialect.name == "postgresql":
            with engine.begin() as connection:
                connection.execute(text("ANALYZE query_tag_value"))
    finally:
        engine.dispose()
    if key.instances_done != plan.instances:
        raise BenchFailure(f"{name}: {key.instances_done} instances back-filled, {plan.instances} stored")
    print(
        f"bench_query_tags: {name}: {facts.instances} instances indexed in {facts.generate_s} s, "
        f"back-filled in {backfill_s:.1f} s",
        file=sys.stderr,
    )
    backfill_fields = {
        "backfill_s": round(backfill_s, 2),
        "backfill_instances_per_s": round(plan.instances / backfill_s),
    }
    rng = np.random.default_rng(23)
    cases = extended_tag_cases(plan, sizes.warm_ups + sizes.requests, rng)
    server_args = server_arguments(args)
    common_fields = {
        "backend": name,
        "index": facts.fields(),
        **backfill_fields,
        "quick": args.quick,
        "server_workers": args.workers,
        "server_args": server_args,
        "machine": machine_facts(work),
    }
    with FoveaServer(work / "data", server_args, env={"FOVEA_DATABASE_URL": database_url}) as server:
        for case in cases:
            record = {**run_case(server, case, sizes.warm_ups), **common_fields}
            emit(record, results)
            if record["non_200"] or record["bad_payloads"]:
                raise BenchFailure(
                    f"{name} {record['case']}: {record['non_200']} request(s) not 200, "
                    f"{record['bad_payloads']} answer(s) with the wrong number of objects"
                )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a tiny index and few requests, for the smoke test"
    )
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--postgres-url", default=POSTGRES_URL, help="database for a fresh schema")
    parser.add_argument("--studies", type=int, help="studies in the index (default 1,000)")
    parser.add_argument("--requests", type=int, help="timed requests per case (default 200)")
    add_server_arguments(parser)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "query_tags.json")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    overrides = {
        name: getattr(args, name) for name in ("studies", "requests") if getattr(args, name) is not None
    }
    if any(value < 1 for value in overrides.values()) or args.workers < 1:
        parser.error("--studies, --requests and --workers must be at least 1")
    args.sizes = dataclasses.replace(sizes, **overrides)
    return args


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
            print(f"bench_query_tags: {reason}; PostgreSQL skipped", file=sys.stderr)
        else:
            backends.append(("postgres", lambda _work: postgres_index(args.postgres_url)))
    results: list[dict[str, Any]] = []
    try:
        for name, index in backends:
            work = Path(tempfile.mkdtemp(prefix=f"fovea-bench-query-tags-{name}-", dir=args.tmp_dir))
            try:
                (work / "data").mkdir()
                with index(work) as database_url:
                    run_backend(name, database_url, plan, args, work, results)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        write_results(results, args.out)
    except BenchFailure as exc:
        print(f"bench_query_tags: FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
