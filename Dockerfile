# batchscribe: the HTTP service. Build: docker build -t batchscribe .
# Run:   docker run -p 8000:8000 -v batchscribe-data:/data -e AWS_REGION=... batchscribe
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY pyproject.toml README.md ./
COPY src ./src
# Wheels only: PyAV bundles FFmpeg and pocketsphinx bundles the en-US model, so no apt packages.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --upgrade pip \
 && /opt/venv/bin/pip install --only-binary=av,pocketsphinx .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=8000 \
    OUTBOX_PATH=/data/outbox.db
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin batchscribe \
 && mkdir -p /data \
 && chown batchscribe:batchscribe /data
COPY --from=build /opt/venv /opt/venv
# Fail the build if the speech model did not make it into the image.
RUN python -c "import os, pocketsphinx; p = os.path.join(pocketsphinx.get_model_path(), 'en-us'); assert os.path.isdir(p), p"
USER batchscribe
WORKDIR /home/batchscribe
# The outbox (events not yet delivered) lives here: mount a persistent volume on /data.
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"
# exec: the server is PID 1 and receives SIGTERM itself, so the relay can drain the outbox.
CMD ["sh", "-c", "exec batchscribe serve --host 0.0.0.0 --port \"${PORT:-8000}\""]
