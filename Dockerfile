# The prediction API image: the exported model plus the serving runtime, nothing else.
# The training stack (scikit-learn, DVC, pandas) stays out: the serving pins are exported
# from uv.lock (its `serve` group, with hashes) inside the build, so uv.lock is the one
# place they are kept.
#   make image            builds it with the model in models/ and the labels below
#
# The base image is named in a FROM line because that is what Dependabot reads and
# updates: it leaves ARG defaults alone (dependabot-core #2057, #10190). BASE_IMAGE picks
# that stage by name; a build may point it at another image instead
# (--build-arg BASE_IMAGE=...), and then the python-base stage is never built or pulled.
# podman (buildah) prunes stages before it expands BASE_IMAGE: without an override it
# needs --skip-unused-stages=false (`make image` passes it).
ARG BASE_IMAGE=python-base
# The uv that exports the pins; the Makefile's UV_VERSION (a test keeps them equal).
ARG UV_VERSION=0.13.9

FROM python:3.12-slim AS python-base

FROM ${BASE_IMAGE} AS requirements
ARG UV_VERSION
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/uv \
    && /opt/uv/bin/pip install --only-binary=:all: "uv==${UV_VERSION}"
COPY pyproject.toml uv.lock /src/
RUN /opt/uv/bin/uv export --project /src --frozen --only-group serve --no-emit-project \
        --format requirements.txt --quiet -o /tmp/requirements.txt

# The serving app's C reader of request rows (src/tabml/serve/_body_readers.c, read by
# tabml.serve.body_readers), compiled for the base image's Python. The compiler stays
# in this stage: the final image gets the module alone. Debian's package versions are not
# pinned: they change with the base image's release, and the module depends only on libc.
FROM ${BASE_IMAGE} AS native
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && include="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')" \
    && if [ ! -f "$include/Python.h" ]; then \
        apt-get install -y --no-install-recommends python3-dev; fi \
    && rm -rf /var/lib/apt/lists/*
COPY src/tabml/serve/_body_readers.c /tmp/native/
RUN suffix="$(python3 -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')" \
    && include="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')" \
    && cc -O2 -shared -fPIC -Wall -I"$include" \
        -o "/tmp/native/_body_readers$suffix" /tmp/native/_body_readers.c

FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
COPY --from=requirements /tmp/requirements.txt /tmp/requirements.txt
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-deps --require-hashes --only-binary=:all: \
        -r /tmp/requirements.txt
# Only the serving package, the contract it shares with export, and the validation
# wording it shares with training (pydantic only): it imports nothing else from tabml.
# Batch scoring (`python -m tabml.score`, the CronJob in deploy/batch) adds itself and
# the error classes the CLI shares (standard library only); it reads CSV here, as the
# image has no pyarrow for Parquet.
COPY src/tabml/__init__.py /opt/app/tabml/__init__.py
COPY src/tabml/contract.py /opt/app/tabml/contract.py
COPY src/tabml/validation.py /opt/app/tabml/validation.py
COPY src/tabml/errors.py /opt/app/tabml/errors.py
COPY src/tabml/serve/ /opt/app/tabml/serve/
COPY src/tabml/score/ /opt/app/tabml/score/
COPY --from=native /tmp/native/_body_readers*.so /opt/app/tabml/serve/
RUN /opt/venv/bin/python -m compileall -q /opt/app

FROM ${BASE_IMAGE}
ARG SOURCE=unknown
ARG REVISION=unknown
ARG VERSION=unknown
ARG CREATED=unknown
ARG MODEL_NAME=unknown
ARG MODEL_VERSION=unknown
ARG DATA_VERSION=unknown
# Lineage (.github/scripts/release_info.py --build-args): model and data versions, a digest
# of the params and the test metrics; GET /metadata and the model card agree. The commit is
# REVISION, the one this image was built from.
ARG PARAMS_SHA256=unknown
ARG METRICS=unknown
LABEL org.opencontainers.image.title="tabml prediction API" \
      org.opencontainers.image.description="ONNX model ${MODEL_NAME} served over HTTP (REST and KServe V2)" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT" \
      io.tabml.model.name="${MODEL_NAME}" \
      io.tabml.model.version="${MODEL_VERSION}" \
      io.tabml.data.version="${DATA_VERSION}" \
      io.tabml.params.sha256="${PARAMS_SHA256}" \
      io.tabml.metrics="${METRICS}"
RUN groupadd --system --gid 10001 tabml \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin tabml
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/app /opt/app
# model.onnx, metadata.json and, when the pipeline wrote one, model_card.md
# (.dockerignore lets nothing else from models/ into the context).
COPY models/ /opt/model/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TABML_HOST=0.0.0.0 \
    TABML_PORT=8080 \
    TABML_MODEL_DIR=/opt/model
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TABML_PORT', '8080') + '/ready', timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m", "tabml.serve"]
