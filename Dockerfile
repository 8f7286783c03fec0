# Fovea: a DICOMweb origin server. Build: docker build -t fovea .   Run: see docker-compose.yml.
# All settings come from FOVEA_* environment variables (docs/configuration.md).
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# An unprivileged user owns the data folder (local index, blobs and the upload spool).
RUN groupadd --system --gid 10001 fovea \
    && useradd --system --uid 10001 --gid fovea --home-dir /var/lib/fovea --no-create-home \
       --shell /usr/sbin/nologin fovea \
    && mkdir -p /var/lib/fovea \
    && chown fovea:fovea /var/lib/fovea

# Only what the wheel needs (.dockerignore keeps the rest out). The wheel packages the alembic
# migrations as app/_migrations and the OpenAPI contract as app/_openapi (pyproject:
# tool.hatch.build.targets.wheel.force-include), so `fovea migrate`, auto-migration and
# /dicom-web/openapi.json work from the installed package alone.
# Dependencies first, each at the version and hash of the lock files (`make lock` regenerates them), in
# their own layer; then Fovea itself without resolving anything again.
WORKDIR /tmp/fovea-src
COPY requirements.lock build-requirements.lock ./
RUN pip install --require-hashes --only-binary=:all: -r build-requirements.lock -r requirements.lock
COPY pyproject.toml README.md ./
COPY migrations ./migrations
COPY openapi ./openapi
COPY app ./app
RUN pip install --no-deps --no-build-isolation . \
    && cd / \
    && rm -rf /tmp/fovea-src

USER fovea
WORKDIR /var/lib/fovea
ENV FOVEA_DATA_DIR=/var/lib/fovea \
    FOVEA_HOST=0.0.0.0 \
    FOVEA_PORT=8080
VOLUME ["/var/lib/fovea"]
EXPOSE 8080

# /health answers 200 while the index database answers, 503 otherwise (urlopen raises on 503).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('FOVEA_PORT', '8080'), timeout=4)"]

# The port comes from FOVEA_PORT (8080). More processes: append --workers N (docs/deployment.md).
CMD ["fovea", "serve", "--host", "0.0.0.0"]
