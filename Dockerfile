# The prediction API image: the exported model plus the serving runtime, nothing else.
# The training stack (scikit-learn, DVC, pandas) stays out; requirements/serve.txt is
# exported from uv.lock (`make serve-requirements`) with hashes.
#   make image            builds it with the model in models/ and the labels below
ARG BASE_IMAGE=python:3.12-slim

FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
COPY requirements/serve.txt /tmp/requirements.txt
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-deps --require-hashes --only-binary=:all: \
        -r /tmp/requirements.txt
# Only the serving package: it imports nothing else from tabml.
COPY src/tabml/__init__.py /opt/app/tabml/__init__.py
COPY src/tabml/serve/ /opt/app/tabml/serve/
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
