"""Rendered and thumbnail resources (PS3.18 10.4.1.1.3): what a person sees, as JPEG, PNG or GIF.

Which image a resource shows:
- a study: the middle instance (by Instance Number) of its first series (by Series Number) that has
  pixel data; a series: its middle instance; an instance: itself;
- of a multi-frame instance, its middle frame, except `/rendered` as `image/gif`, which animates
  every frame (at most 500, evenly spaced); `/frames/{list}/rendered` shows the listed frames
  (several only as an animated GIF).
Only the frames shown are read and decoded, so a thumbnail of a 2,000-frame instance costs one frame.

What is shown, and rendering it, is `app/retrieve/rendered.py`; here the request is read, and the
encoded image kept in a per-process cache keyed by the stored file, the frames and every rendering
option.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response

from app.api.conditional import make_validators
from app.api.deps import get_services
from app.api.rendered_documents import answer_rendered_document
from app.api.wado_request import VARY, WadoRequest, answered_again_if_changed
from app.dicomweb.frame_numbers import parse_frame_list
from app.dicomweb.rendered_params import negotiate_rendered_media_type, parse_render_options
from app.dicomweb.scope import INSTANCE_ROUTE, SERIES_ROUTE, STUDY_ROUTE, Scope
from app.imaging.display import RenderOptions
from app.retrieve.rendered import instance_shown, render, shown_frames
from app.services import Services

router = APIRouter(tags=["WADO-RS"])

FRAMES = INSTANCE_ROUTE + "/frames/{frame_list}"
WINDOW_HEADER = "Fovea-Window"  # how the grey levels were chosen (dataset, request, VOI LUT, automatic)


@answered_again_if_changed
def answer_rendered(
    services: Services, wado: WadoRequest, options: RenderOptions, numbers: tuple[int, ...] | None
) -> Response:
    """Look up the image to show, render it (or take it from the cache), answer with it."""
    with services.engine.connect() as connection:
        instance = instance_shown(connection, wado.scope)
        numbers = shown_frames(instance, options, numbers)
        validators = make_validators(
            "rendered",
            instance.data_blob_key,
            numbers,
            options.cache_key(),
            last_modified=instance.updated_at,
        )
        if (not_modified := wado.not_modified(validators)) is not None:
            return not_modified
        key = (instance.data_blob_key, numbers, "rendered", options.cache_key())
        body, window = services.rendered_images.get_or_make(
            key, lambda: render(services, connection, instance, numbers, options)
        )
    headers = {**validators.headers, "Vary": VARY, WINDOW_HEADER: window}
    return Response(body, media_type=options.image_format.value, headers=headers)


# --- Routes ---


def _endpoint(*, thumbnail: bool) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        services = get_services(request)
        params = request.path_params
        scope = Scope(
            params["study_instance_uid"], params.get("series_instance_uid"), params.get("sop_instance_uid")
        )
        wado = WadoRequest.read(request, services.settings, scope)
        if not thumbnail and scope.sop_instance_uid is not None and "frame_list" not in params:
            document = await services.run_blocking(answer_rendered_document, services, wado)
            if document is not None:  # a PDF or CDA instance renders as its document
                return document
        image_format = negotiate_rendered_media_type(*wado.accept_lists)
        options = parse_render_options(
            request.query_params.multi_items(), thumbnail=thumbnail, image_format=image_format
        )
        numbers = parse_frame_list(params["frame_list"]) if "frame_list" in params else None
        return await services.run_blocking(answer_rendered, services, wado, options, numbers)

    return endpoint


for _kind, _thumbnail in (("rendered", False), ("thumbnail", True)):
    for _level, _path in (
        ("study", STUDY_ROUTE),
        ("series", SERIES_ROUTE),
        ("instance", INSTANCE_ROUTE),
        ("frames", FRAMES),
    ):
        router.add_api_route(
            f"{_path}/{_kind}",
            _endpoint(thumbnail=_thumbnail),
            methods=["GET"],
            summary=f"Retrieve the {_level} {_kind}",
            name=f"retrieve_{_level}_{_kind}",
        )
