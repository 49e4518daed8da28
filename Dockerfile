# syntax=docker/dockerfile:1
# One image for every PyROS process: `pyros run <service>`, `pyros run gateway`, `pyros db upgrade`.
#   docker build -t pyros:local .

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
# uv from PyPI (same minor series as the one that wrote uv.lock).
RUN pip install --no-cache-dir "uv==0.13.9"
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11
WORKDIR /app

# Dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-package voevent-parse --no-install-project

# Then the project itself, as a real (non-editable) install in the venv.
COPY libs ./libs
COPY cli ./cli
COPY services ./services
COPY simulators ./simulators
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-package voevent-parse --no-editable
# voevent-parse 1.0.3 is an sdist uv cannot unpack (see pyproject.toml); its dependencies
# are already in the venv from uv.lock.
RUN pip --python /app/.venv/bin/python install --no-cache-dir --no-deps "voevent-parse==1.0.3" \
 && /app/.venv/bin/python -c "import voeventparse, pyros_common" \
 && /app/.venv/bin/pyros --help > /dev/null

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="pyros" \
      org.opencontainers.image.description="PyROS robotic observatory control system" \
      org.opencontainers.image.licenses="CECILL-2.1"
RUN groupadd --gid 10001 pyros \
 && useradd --uid 10001 --gid 10001 --home-dir /home/pyros --create-home --shell /usr/sbin/nologin pyros \
 && mkdir -p /data && chown pyros:pyros /data
COPY --from=build --chown=root:root /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/pyros \
    MPLCONFIGDIR=/tmp/matplotlib \
    XDG_CACHE_HOME=/tmp/cache \
    PYROS_DATA_DIR=/data \
    PYROS_HTTP_PORT=8080
WORKDIR /app
USER 10001:10001
EXPOSE 8080 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=4 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PYROS_HTTP_PORT', '8080'), timeout=3)"
ENTRYPOINT ["pyros"]
CMD ["--help"]
