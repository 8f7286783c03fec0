"""FastAPI dependencies: how a handler gets the running services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.services import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _services_dependency(request: Request) -> Services:
    # A coroutine on purpose: FastAPI runs a plain-function dependency in a worker thread, a hop
    # that cost every request about 0.1 ms of its 0.3 ms in the application.
    return get_services(request)


ServicesDep = Annotated[Services, Depends(_services_dependency)]
