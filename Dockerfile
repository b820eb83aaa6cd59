# batchscribe: the HTTP service. Build: docker build -t batchscribe .
# Run:   docker run -p 8000:8000 -v batchscribe-data:/data -e AWS_REGION=... batchscribe
# Local mode (the service beside a local AWS emulator, no AWS account; not for production):
#   docker build --build-arg EXTRAS=local -t batchscribe:local .
#   docker run -p 127.0.0.1:8000:8000 -e HOST=0.0.0.0 -e AUTH_MODE=none \
#     -e ALLOW_UNAUTHENTICATED=true batchscribe:local batchscribe local
# Binding 0.0.0.0 makes AUTH_MODE default to api_key: create keys with
#   docker exec <container> batchscribe keys create --tenant <uuid>
FROM python:3.11-slim AS build
# Optional extras of pyproject.toml to install; empty for production.
ARG EXTRAS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1
# The same uv as `make install` (Makefile UV_VERSION).
RUN pip install uv==0.13.8
WORKDIR /build
# The exact versions of uv.lock (--locked fails if it is stale), without the dev tools (--no-dev)
# and, unless EXTRAS=local, without the local emulator (moto): the image talks to real AWS.
# Wheels only for PyAV (it bundles FFmpeg) and pocketsphinx (it bundles the en-US model), so no
# apt packages.
# Dependencies first, in their own layer: a change to src/ does not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project ${EXTRAS:+--extra $EXTRAS} \
      --no-build-package av --no-build-package pocketsphinx
COPY src ./src
RUN uv sync --locked --no-dev --no-editable ${EXTRAS:+--extra $EXTRAS} \
      --no-build-package av --no-build-package pocketsphinx

FROM python:3.11-slim
ARG EXTRAS=""
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=8000 \
    DATABASE_URL=sqlite:////data/batchscribe.db \
    BLOB_STORE=file:///data/blobs \
    OUTBOX_PATH=/data/outbox.db
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin batchscribe \
 && mkdir -p /data \
 && chown batchscribe:batchscribe /data
COPY --from=build /opt/venv /opt/venv
# Fail the build if the speech model did not make it into the image, or the emulator made it into
# a production one.
RUN python -c "import os, pocketsphinx; p = os.path.join(pocketsphinx.get_model_path(), 'en-us'); assert os.path.isdir(p), p" \
 && { [ -n "$EXTRAS" ] || python -c "import importlib.util as u; assert u.find_spec('moto') is None, 'moto in a production image'"; } \
 && batchscribe --version
USER batchscribe
WORKDIR /home/batchscribe
# The database (jobs, events not yet delivered, keys) and the blob store live here by default:
# mount a persistent volume on /data, or set DATABASE_URL and BLOB_STORE (PostgreSQL, S3).
# OUTBOX_PATH names where earlier versions kept their events: imported once at startup if found.
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"
# exec: the server is PID 1 and receives SIGTERM itself, so the relay can drain the outbox.
CMD ["sh", "-c", "exec batchscribe serve --host 0.0.0.0 --port \"${PORT:-8000}\""]
