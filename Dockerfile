# syntax=docker/dockerfile:1
# The screening service: a runtime image with no training dependencies, running as a non-root user.
#   docker build -t screening .
#   docker compose up          (service + PostgreSQL, see compose.yaml and the README (Operations section))

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY screening ./screening
# The package's runtime dependencies alone: the `training` and `dev` extras (scikit-learn, skl2onnx,
# shap, pytest...) stay out. The package itself runs from /opt/screening beside its shipped models
# (the service finds them relative to its source), so it is uninstalled from the venv again.
RUN /opt/venv/bin/pip install --no-cache-dir . \
    && /opt/venv/bin/pip uninstall --yes screening

FROM ${PYTHON_IMAGE} AS runtime
# WeasyPrint renders court reports with Pango; DejaVu gives it a font. Versions follow the base
# image's Debian release, which pins them.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 screening \
    && useradd --system --uid 10001 --gid screening --home-dir /var/lib/screening --create-home \
       --shell /usr/sbin/nologin screening
COPY --from=build /opt/venv /opt/venv
COPY screening /opt/screening/screening
# Bytecode built into the image: with PYTHONDONTWRITEBYTECODE nothing writes it at run time, and compiling
# the package on every start cost 0.2 s of a 1.2 s start-up.
RUN python -m compileall -q /opt/screening/screening
# The shipped model artifacts (ONNX files and their manifest), read-only. A promoted model comes from the
# database (each instance keeps its copy in SCREENING_DATA_DIR); a site can point SCREENING_MODEL_DIR at its own.
COPY models /opt/screening/models
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/screening \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SCREENING_ENVIRONMENT=production \
    SCREENING_DATA_DIR=/var/lib/screening \
    SCREENING_MIGRATE_ON_START=false \
    SCREENING_HOST=0.0.0.0 \
    SCREENING_PORT=8000 \
    SCREENING_WORKERS=2 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/screening-metrics
WORKDIR /opt/screening
USER 10001:10001
EXPOSE 8000
# On the port the service listens on: SCREENING_PORT, which a site may set.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:' + os.environ.get('SCREENING_PORT', '8000') + '/health/live', timeout=2)"]
# Migrations are a separate step (`python -m screening migrate`, see compose.yaml): safe from several
# instances at once.
CMD ["python", "-m", "screening", "serve"]
