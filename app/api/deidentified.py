"""The de-identified rendition (PS3.15 Annex E Basic Profile, FOVEA_DEID_*) under /dicom-web/deidentified.

A study, its series and instances are named here by their replacement UIDs only. Each request is
resolved to the original scope (app/lifecycle/rendition.py), answered by the same code as the plain
root where the bytes are the same (frames, rendered images, bulk data: pixels are not altered by the
profile) with URLs under the rendition, and de-identified on the fly where they are not (metadata,
Part 10 instances, search results). Withheld instances (burned-in text) are 404 and absent from
searches. Error messages name replacement UIDs, never originals. The audit trail records the original
UIDs, under the rendition's route templates, so an auditor sees what was read and that it was
de-identified. Who may call it: route_scopes.py (admin, or a de-identified share token for its study).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from pydicom.uid import ExplicitVRLittleEndian

from app.api.deps import get_services
from app.api.multipart import OutgoingPart
from app.api.qido import more_results_warning
from app.api.rendered import answer_rendered
from app.api.urls import dicomweb_base_url
from app.api.wado_pixels import retrieve_bulkdata_value, retrieve_frames
from app.api.wado_request import VARY, WadoRequest, accept_lists_of, multipart_response, not_found_message
from app.audit.notes import AuditedUids, audited_uids
from app.dicomweb.errors import BadRequest, DicomwebError, Gone, NotAcceptable, NotFound
from app.dicomweb.frame_numbers import parse_frame_list
from app.dicomweb.mediatypes import DICOM_JSON, DICOM_XML, ResourceCategory
from app.dicomweb.negotiation import (
    METADATA_XML,
    InstanceSelection,
    negotiate_instance_media_type,
    negotiate_metadata_media_type,
)
from app.dicomweb.query import SearchQuery, parse_search
from app.dicomweb.query_keys import QueryLevel
from app.dicomweb.rendered_params import negotiate_rendered_media_type, parse_render_options
from app.dicomweb.responses import dicom_json_to_xml
from app.dicomweb.scope import Scope
from app.dicomweb.search_results import result_to_dicom_json
from app.lifecycle.rendition import REWRITTEN_AS_EXPLICIT, Rendition, StudyMap
from app.security.principal import principal_of
from app.services import Services
from app.store.read.retrieval import StoredInstance, stored_instances, stored_metadata
from app.store.read.search import RETRIEVE_URL, SearchPage, search

router = APIRouter(tags=["De-identified rendition"])

ROOT = "/deidentified"
STUDY = ROOT + "/studies/{study}"
SERIES = STUDY + "/series/{series}"
INSTANCE = SERIES + "/instances/{instance}"
FRAMES = INSTANCE + "/frames/{frame_list}"
_RETRIEVE_URL_KEY = f"{RETRIEVE_URL:08X}"
# Searches match on these only: matching on anything the profile removes or changes (names, dates,
# descriptions) would reveal the original values one guess at a time.
_UID_KEYS = {"seriesinstanceuid": "SeriesInstanceUID", "0020000e": "SeriesInstanceUID"} | {
    "sopinstanceuid": "SOPInstanceUID",
    "00080018": "SOPInstanceUID",
}
_STUDY_UID_KEYS = frozenset({"studyinstanceuid", "0020000d"})
_PAGING_KEYS = frozenset({"includefield", "limit", "offset"})
_OTHER_KEYS = frozenset(
    {
        "modality",
        "00080060",
        "seriesnumber",
        "00200011",
        "instancenumber",
        "00200013",
        "sopclassuid",
        "00080016",
    }
    | _PAGING_KEYS
)


def _no_location(_item: dict[str, Any]) -> str:  # search parts have no URL
    return ""


@dataclasses.dataclass(frozen=True, slots=True)
class Resolved:
    """A request's study map, and its WadoRequest turned to the original scope and the rendition's URLs."""

    study: StudyMap
    wado: WadoRequest


def _rendition(request: Request, services: Services) -> Rendition:
    state = request.app.state
    rendition = getattr(state, "deid_rendition", None)
    if rendition is None:
        rendition = services.settings.rendition()
        if rendition is None:
            raise NotFound("the de-identified rendition is off: FOVEA_DEID_SECRET is not set")
        state.deid_rendition = rendition
    assert isinstance(rendition, Rendition)
    return rendition


def _requested_scope(request: Request) -> Scope:
    params = request.path_params
    return Scope(params["study"], params.get("series"), params.get("instance"))


def _study_key(request: Request, replacement: str) -> int | None:
    """The index key a de-identified share token gives for its study (None for anyone else)."""
    principal = principal_of(request)
    if principal is None or principal.study_uid != replacement:
        return None
    return principal.study_key


def _resolve(services: Services, rendition: Rendition, wado: WadoRequest, audited: AuditedUids) -> Resolved:
    """The original scope of the request's replacement UIDs; 404 (naming the replacements) when none."""
    requested = wado.scope
    replacement = requested.study_instance_uid
    study = rendition.study(services.engine, replacement, _study_key(wado.request, replacement))
    original = None
    if study is not None:
        original = study.original_scope(requested.series_instance_uid, requested.sop_instance_uid)
    if study is None or original is None or not study.served(original):
        raise NotFound(not_found_message(requested))
    audited.add(
        studies=(original.study_instance_uid,),
        series=(original.series_instance_uid or "",),
        instances=(original.sop_instance_uid or "",),
    )

    def shown_as(scope: Scope) -> Scope:
        series, instance = scope.series_instance_uid, scope.sop_instance_uid
        return Scope(
            study.replacement(scope.study_instance_uid),
            None if series is None else study.replacement(series),
            None if instance is None else study.replacement(instance),
        )

    turned = dataclasses.replace(wado, scope=original, base_url=wado.base_url + ROOT, shown_as=shown_as)
    return Resolved(study, turned)


Answer = Callable[[Services, Rendition, Resolved], Response]


def _endpoint(answer: Answer) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        services = get_services(request)
        rendition = _rendition(request, services)
        wado = WadoRequest.read(request, services.settings, _requested_scope(request))
        return await services.run_blocking(
            _answered, answer, services, rendition, wado, audited_uids(request)
        )

    return endpoint


def _answered(
    answer: Answer, services: Services, rendition: Rendition, wado: WadoRequest, audited: AuditedUids
) -> Response:
    resolved = _resolve(services, rendition, wado, audited)
    try:
        return answer(services, rendition, resolved)
    except DicomwebError as exc:  # the shared code's messages name the original UIDs
        exc.message = resolved.study.scrub(exc.message)
        raise


# --- Metadata ---


def _metadata(services: Services, rendition: Rendition, resolved: Resolved) -> Response:
    wado, study = resolved.wado, resolved.study
    media_type = negotiate_metadata_media_type(*wado.accept_lists)
    served = {member.sop_instance_uid for member in study.served(wado.scope)}
    with services.engine.connect() as connection:
        stored = stored_metadata(connection, wado.scope)
    items = []
    for item in stored:
        dataset = orjson.loads(item)
        if _first_value(dataset, "00080018") in served:
            items.append(rendition.dicom_json(dataset, wado.base_url))
    if not items:  # deleted since the study was mapped
        raise NotFound(not_found_message(wado.scope))
    return _json_or_xml(items, media_type, lambda item: f"{_url_of(wado, item)}/metadata")


def _first_value(dataset: dict[str, Any], tag: str) -> str | None:
    values = dataset.get(tag, {}).get("Value") or [None]
    return None if values[0] is None else str(values[0])


def _url_of(wado: WadoRequest, item: dict[str, Any]) -> str:
    """The rendition URL of a de-identified instance object (its UIDs are already the replacements)."""
    study, series, sop = (_first_value(item, tag) for tag in ("0020000D", "0020000E", "00080018"))
    return Scope(str(study), series, sop if series is not None else None).url(wado.base_url)


def _json_or_xml(
    items: list[dict[str, Any]],
    media_type: str,
    location: Callable[[dict[str, Any]], str],
    warning: str | None = None,
) -> Response:
    headers = {"Vary": VARY, "Cache-Control": "private"}
    if warning is not None:  # a search page cut short (PS3.18 8.3.4.4)
        headers["Warning"] = warning
    if media_type == METADATA_XML:
        parts = (OutgoingPart(DICOM_XML, location(item), dicom_json_to_xml(item)) for item in items)
        response = multipart_response(parts, METADATA_XML, None)
        response.headers.update(headers)
        return response
    return Response(orjson.dumps(items), media_type=DICOM_JSON, headers=headers)


# --- Part 10 instances ---


def _instances(services: Services, rendition: Rendition, resolved: Resolved) -> Response:
    """Part 10, de-identified, in the stored transfer syntax (Implicit VR and Deflated Explicit VR Little
    Endian also as Explicit VR Little Endian: the data set is written again anyway)."""
    wado, study = resolved.wado, resolved.study
    # Only what the study map serves: an instance stored since it was made is not judged yet.
    served = {member.sop_instance_uid for member in study.served(wado.scope)}
    with services.engine.connect() as connection:
        instances = [i for i in stored_instances(connection, wado.scope) if i.sop_instance_uid in served]
    available = [instance for instance in instances if instance.unavailable_reason is None]
    if not available:
        raise (
            Gone(str(instances[0].unavailable_reason))
            if instances
            else NotFound(not_found_message(wado.scope))
        )
    chosen = [(instance, _selection(wado, instance)) for instance in available]
    acceptable = [(i, selection) for i, selection in chosen if isinstance(selection, InstanceSelection)]
    if not acceptable:  # none can be had in an acceptable form: the first refusal says why
        raise next(selection for _i, selection in chosen if isinstance(selection, NotAcceptable))
    available = [instance for instance, _selection in acceptable]
    selections = [selection for _instance, selection in acceptable]
    first = selections[0]
    if not first.multipart:
        body = rendition.part10_of(services.blobs, available[0], first.transfer_syntax)
        headers = {
            "Vary": VARY,
            "Cache-Control": "private",
            "Content-Location": wado.instance_url(available[0]),
        }
        return Response(body, media_type=first.part_content_type, headers=headers)
    parts = (
        OutgoingPart(
            selection.part_content_type,
            wado.instance_url(instance),
            _part10(services, rendition, instance, selection),
        )
        for instance, selection in zip(available, selections, strict=True)
    )
    status = 200 if len(available) == len(instances) else 206  # some unavailable or not acceptable
    response = multipart_response(parts, first.content_type, None, status_code=status)
    response.headers["Cache-Control"] = "private"
    return response


def _selection(wado: WadoRequest, instance: StoredInstance) -> InstanceSelection | NotAcceptable:
    """How the instance is sent, or why it cannot be in an acceptable form."""
    stored = instance.transfer_syntax_uid

    def can_produce(syntax: str) -> bool:
        return syntax == stored or (syntax == ExplicitVRLittleEndian and stored in REWRITTEN_AS_EXPLICIT)

    try:
        selection = negotiate_instance_media_type(
            *wado.accept_lists,
            stored_syntax=stored,
            can_produce=can_produce,
            single_part_allowed=wado.scope.sop_instance_uid is not None,
        )
    except NotAcceptable as refusal:
        return refusal
    if selection.category is not ResourceCategory.INSTANCE:
        return NotAcceptable(
            "the de-identified rendition serves instances as Part 10 only; frames and pixel data have "
            "resources of their own"
        )
    return selection


def _part10(
    services: Services, rendition: Rendition, instance: StoredInstance, selection: InstanceSelection
) -> Iterator[bytes]:
    yield rendition.part10_of(services.blobs, instance, selection.transfer_syntax)


# --- Frames and bulk data: the stored bytes, under the rendition's URLs ---


def _frames(services: Services, _rendition: Rendition, resolved: Resolved) -> Response:
    wado = resolved.wado
    return retrieve_frames(services, wado, parse_frame_list(wado.request.path_params["frame_list"]))


def _bulkdata(services: Services, rendition: Rendition, resolved: Resolved) -> Response:
    """A bulk data value, when the instance's de-identified metadata still points at it."""
    wado = resolved.wado
    path = wado.request.path_params["bulkdata_path"]
    with services.engine.connect() as connection:
        stored = stored_metadata(connection, wado.scope)
    if not stored:  # deleted since the study was mapped
        raise NotFound(not_found_message(wado.scope))
    metadata = orjson.dumps(rendition.dicom_json(orjson.loads(stored[0]), wado.base_url))
    if f'/bulkdata/{path}"'.encode() not in metadata:
        raise NotFound(f"{wado.url_of(wado.scope)}/bulkdata/{path} is not part of the de-identified instance")
    return retrieve_bulkdata_value(services, wado, path)


# --- Rendered images and thumbnails ---


def _rendered(*, thumbnail: bool) -> Answer:
    def answer(services: Services, _rendition: Rendition, resolved: Resolved) -> Response:
        wado, study = resolved.wado, resolved.study
        image_format = negotiate_rendered_media_type(*wado.accept_lists)
        options = parse_render_options(
            wado.request.query_params.multi_items(), thumbnail=thumbnail, image_format=image_format
        )
        if options.annotations:
            raise BadRequest("the de-identified rendition burns in no annotations (they show patient data)")
        frame_list = wado.request.path_params.get("frame_list")
        numbers = parse_frame_list(frame_list) if frame_list is not None else None
        shown = _shown_instance(study, wado.scope)
        return answer_rendered(services, dataclasses.replace(wado, scope=shown), options, numbers)

    return answer


def _shown_instance(study: StudyMap, scope: Scope) -> Scope:
    """What a study or series shows, among the instances served: the middle image of the first series
    with any (as the plain root chooses, withheld instances left out)."""
    images = [member for member in study.served(scope) if member.has_pixels]
    if not images:
        raise NotFound("nothing to render: no image is served here")
    first_series = images[0].series_instance_uid
    in_series = [member for member in images if member.series_instance_uid == first_series]
    if scope.sop_instance_uid is not None:
        in_series = [member for member in in_series if member.sop_instance_uid == scope.sop_instance_uid]
    shown = in_series[(len(in_series) - 1) // 2]
    return Scope(scope.study_instance_uid, shown.series_instance_uid, shown.sop_instance_uid)


# --- Searches within the study ---


def _search(level: QueryLevel) -> Answer:
    def answer(services: Services, rendition: Rendition, resolved: Resolved) -> Response:
        wado, study = resolved.wado, resolved.study
        media_type = negotiate_metadata_media_type(*accept_lists_of(wado.request))
        parameters = _original_parameters(wado.request.query_params.multi_items(), study)
        if parameters is None:  # a UID that is no replacement of this study matches nothing
            return _json_or_xml([], media_type, _no_location)
        query = parse_search(parameters, level)
        scope = Scope(wado.scope.study_instance_uid, wado.scope.series_instance_uid)
        with services.engine.connect() as connection:
            page = search(connection, query, scope, max_results=services.settings.qido_max_results)
        served = {(m.series_instance_uid, m.sop_instance_uid) for m in study.served(wado.scope)}
        items = []
        for result in page.results:
            if result.sop_instance_uid is not None:
                if (result.series_instance_uid, result.sop_instance_uid) not in served:
                    continue
            elif not any(series == result.series_instance_uid for series, _sop in served):
                continue
            original = Scope(result.study_instance_uid, result.series_instance_uid, result.sop_instance_uid)
            items.append(_search_item(rendition, result.attributes, wado.base_url, wado.url_of(original)))
        return _json_or_xml(items, media_type, _no_location, _more_warning(page, query))

    return answer


def _search_item(rendition: Rendition, attributes: dict[int, Any], base_url: str, url: str) -> dict[str, Any]:
    item = rendition.dicom_json(result_to_dicom_json(attributes), base_url)
    item[_RETRIEVE_URL_KEY] = {"vr": "UR", "Value": [url]}
    return dict(sorted(item.items()))


def _more_warning(page: SearchPage, query: SearchQuery) -> str | None:
    return more_results_warning(page, query) if page.has_more else None


def _search_studies(
    services: Services, rendition: Rendition, request: Request, audited: AuditedUids
) -> Response:
    """Studies named by replacement Study Instance UIDs (the rendition lists no other way)."""
    media_type = negotiate_metadata_media_type(*accept_lists_of(request))
    base_url = dicomweb_base_url(request, services.settings.public_base_url) + ROOT
    named: list[str] = []
    others = []
    for key, value in request.query_params.multi_items():
        if key.lower() in _STUDY_UID_KEYS:
            named += [uid.strip() for uid in value.replace("\\", ",").split(",") if uid.strip()]
        elif key.lower() in _PAGING_KEYS:
            others.append((key, value))
        else:
            raise BadRequest(f"{key}: the de-identified rendition searches studies by StudyInstanceUID only")
    if not named:
        raise BadRequest("the de-identified rendition searches named studies only: give StudyInstanceUID")
    maps = {}
    for replacement in dict.fromkeys(named):
        study = rendition.study(services.engine, replacement, _study_key(request, replacement))
        if study is not None and study.served(Scope(study.study_instance_uid)):
            maps[study.study_instance_uid] = study
    if not maps:
        return _json_or_xml([], media_type, _no_location)
    query = parse_search([("StudyInstanceUID", ",".join(maps)), *others], QueryLevel.STUDY)
    with services.engine.connect() as connection:
        page = search(connection, query, None, max_results=services.settings.qido_max_results)
    audited.add(studies=(result.study_instance_uid for result in page.results))
    items = [
        _search_item(
            rendition,
            result.attributes,
            base_url,
            Scope(maps[result.study_instance_uid].replacement_study_uid).url(base_url),
        )
        for result in page.results
    ]
    return _json_or_xml(items, media_type, _no_location, _more_warning(page, query))


async def search_studies(request: Request) -> Response:
    services = get_services(request)
    rendition = _rendition(request, services)
    return await services.run_blocking(_search_studies, services, rendition, request, audited_uids(request))


def _original_parameters(parameters: list[tuple[str, str]], study: StudyMap) -> list[tuple[str, str]] | None:
    """The search parameters with replacement UIDs turned to originals; None when one matches nothing;
    BadRequest for a key the rendition does not match on."""
    turned = []
    for key, value in parameters:
        name = key.lower()
        if name in _UID_KEYS:
            originals = [study.originals.get(uid.strip()) for uid in value.replace("\\", ",").split(",")]
            known = [uid for uid in originals if uid is not None]
            if not known:
                return None
            turned.append((_UID_KEYS[name], ",".join(known)))
        elif name in _OTHER_KEYS:
            turned.append((key, value))
        else:
            raise BadRequest(
                f"{key}: the de-identified rendition matches on UIDs, Modality, SOPClassUID, SeriesNumber "
                "and InstanceNumber only"
            )
    return turned


# --- Routes ---

_LEVELS = (("study", STUDY), ("series", SERIES), ("instance", INSTANCE))
_ROUTES: list[tuple[str, Answer, str]] = [
    (FRAMES, _frames, "Retrieve frames, de-identified rendition"),
    (INSTANCE + "/bulkdata/{bulkdata_path:path}", _bulkdata, "Retrieve a bulk data value, de-identified"),
    *((path, _instances, f"Retrieve the {level}'s instances, de-identified") for level, path in _LEVELS),
    *(
        (path + "/metadata", _metadata, f"Retrieve {level} metadata, de-identified")
        for level, path in _LEVELS
    ),
    (STUDY + "/series", _search(QueryLevel.SERIES), "Search the study's series, de-identified"),
    (STUDY + "/instances", _search(QueryLevel.INSTANCE), "Search the study's instances, de-identified"),
    (SERIES + "/instances", _search(QueryLevel.INSTANCE), "Search the series' instances, de-identified"),
    *(
        (
            f"{path}/{kind}",
            _rendered(thumbnail=kind == "thumbnail"),
            f"Retrieve the {level} {kind}, de-identified",
        )
        for kind in ("rendered", "thumbnail")
        for level, path in (*_LEVELS, ("frames", FRAMES))
    ),
]
router.add_api_route(
    ROOT + "/studies",
    search_studies,
    methods=["GET"],
    summary="Search named studies, de-identified",
    name="deidentified_studies",
)
for _path, _answer, _summary in _ROUTES:
    router.add_api_route(
        _path,
        _endpoint(_answer),
        methods=["GET"],
        summary=_summary,
        name="deidentified_"
        + _path.removeprefix(ROOT + "/").replace("/", "_").replace("{", "").replace("}", ""),
    )
