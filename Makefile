# Everyday verbs. Every target sets up the environment first (uv + uv.lock), so on a
# fresh machine with Python 3.11+ and make, `make repro` and `make test` are enough.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# The workflows' setup-uv steps and the Dockerfile's UV_VERSION default install this uv
# too (tests/workflows/test_pins.py, tests/serve/test_image_files.py).
UV_VERSION := 0.13.9
# Use uv from PATH when there is one; otherwise install a pinned uv into .tools/.
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
RUN := $(UV) run --locked
# Install packages with their bytecode: without it every process (each dvc call, each
# stage, the API server) compiles its imports again wherever .pyc files cannot be written
# (PYTHONDONTWRITEBYTECODE, read-only trees), which costs a server about half its start.
export UV_COMPILE_BYTECODE := 1

.PHONY: help setup init repro test test-fast lint format typecheck push pull status metrics plots \
        report exp-show benchmark benchmark-10m clean serve refresh-data image benchmark-serve \
        promote predict benchmark-score

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(CURDIR)/.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

setup: $(UV) ## Create .venv from uv.lock (dev tools included)
	$(UV) sync --locked

# Once, in a fresh copy of the template: rename the package, retarget params.yaml at your
# data, set the DVC remote, run the pipeline and commit. Missing flags are asked for.
ARGS ?=
init: setup ## Make this copy your project: ARGS="--project-name --package-name --data --target --remote"
	$(RUN) tabml init $(ARGS)

repro: setup ## Run the pipeline (dvc repro) on the dataset params.yaml names
	$(RUN) dvc repro

test: setup ## Run the whole test suite, slow end-to-end tests included
	$(RUN) pytest -n auto

test-fast: setup ## Run the fast tests only
	$(RUN) pytest -m "not slow"

lint: setup ## ruff, formatting check and mypy
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy src

format: setup ## Apply ruff's fixes and formatting
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

typecheck: setup ## mypy in strict mode
	$(RUN) mypy src

push: setup ## Upload data and models to the DVC remote (and the run-cache)
	$(RUN) dvc push --run-cache

# The command for data that is not a DVC import comes from the environment, so that any
# quoting in it survives: make refresh-data REFRESH_COMMAND='python fetch.py && dvc add ...'
export REFRESH_COMMAND
refresh-data: setup ## New data for a retrain: dvc update every import, then REFRESH_COMMAND
	$(RUN) tabml refresh-data --command "$$REFRESH_COMMAND"

pull: setup ## Download the data and models that dvc.lock names
	$(RUN) dvc pull

status: setup ## What changed since dvc.lock, in the workspace and against the remote
	$(RUN) dvc status
	$(RUN) dvc data status --granular

metrics: setup ## Show metrics, and their diff against main
	$(RUN) dvc metrics show
	$(RUN) dvc metrics diff main

plots: setup ## Render the plots to dvc_plots/index.html (diff against main)
	$(RUN) dvc plots diff main

BASE ?= main
report: setup ## The pull-request report and quality gate against BASE (default main)
	$(RUN) tabml report --base $(BASE) --out report.md --summary report.json
	@echo "report written to report.md"

# A released version into a stage's overlay (docs/deploy.md: Promote and roll back): the
# digest from its GitHub release, verified with gh, then a pull request from promote/STAGE
# into BASE and the stage tag model#STAGE#N. EDIT_ONLY=1 edits the overlay here and does
# nothing else; VERIFY=false skips the attestation check (for a repository without).
VERSION ?=
STAGE ?=
EDIT_ONLY ?=
VERIFY ?= true
promote: ## Promote a released model: VERSION=vX.Y.Z STAGE=staging|production [EDIT_ONLY=1]
	git fetch -q --tags origin $(BASE)
	python3 .github/scripts/promote.py apply --version "$(VERSION)" --stage "$(STAGE)" \
		--base "origin/$(BASE)" --base-branch "$(BASE)" \
		$(if $(EDIT_ONLY),--edit-only) $(if $(filter true,$(VERIFY)),--verify-attestation)

exp-show: setup ## Compare experiments
	$(RUN) dvc exp show

benchmark: setup ## Pipeline benchmarks (minutes); figures go to benchmarks/results/
	$(RUN) python benchmarks/pipeline.py

# The 10M-row point on its own (each stage once, no `dvc repro`): it takes tens of minutes,
# so it is added to the figures `make benchmark` wrote rather than rerun with them.
benchmark-10m: setup ## The 10M-row stage point, added to benchmarks/results/ (tens of minutes)
	$(RUN) python benchmarks/pipeline.py --sizes 10000000 --repeat 1 --skip-default \
		--skip-repro --keep-sizes

clean: ## Remove caches and the environments (not the DVC cache)
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache dvc_plots

# Flags beyond these (--chunk-rows, --bad-rows, --out-of-range, --refused, --summary)
# go in PREDICT_ARGS; left out, they come from params.yaml's score section.
INPUT ?=
OUTPUT ?=
PREDICT_ARGS ?=
predict: setup ## Score a table with models/ in chunks: INPUT=in.csv OUTPUT=out.csv [PREDICT_ARGS=...]
	@test -n "$(INPUT)" && test -n "$(OUTPUT)" || \
		{ echo "make predict needs INPUT=<.csv|.parquet> and OUTPUT=<.csv|.parquet>" >&2; exit 2; }
	$(RUN) tabml predict --input "$(INPUT)" --output "$(OUTPUT)" $(PREDICT_ARGS)

# --- serving ----------------------------------------------------------------------------
IMAGE ?= tabml-serve:latest
CONTAINER_TOOL ?= $(or $(shell command -v docker 2>/dev/null),$(shell command -v podman 2>/dev/null),docker)
# Extra build flags, e.g. "--pull=never --network=host" for podman without a registry.
IMAGE_BUILD_FLAGS ?=

# podman keeps the HEALTHCHECK only in docker format; and it prunes stages before it expands
# BASE_IMAGE, so without an override it must keep the python-base stage that names the base.
PODMAN_BUILD_FLAGS = --format=docker $(if $(BASE_IMAGE),,--skip-unused-stages=false)

serve: setup ## Run the prediction API on models/ without a container (TABML_* settings)
	TABML_MODEL_DIR=$${TABML_MODEL_DIR:-models} $(RUN) python -m tabml.serve

# The lineage labels (io.tabml.*) come from metadata.json as the release workflow sets them.
image: ## Build the serving image from models/ (IMAGE=name:tag, BASE_IMAGE=..., CONTAINER_TOOL=...)
	@test -f models/model.onnx && test -f models/metadata.json || \
		{ echo "models/ lacks model.onnx or metadata.json: run make repro or make pull" >&2; exit 1; }
	lineage=$$(python3 .github/scripts/release_info.py --build-args models/metadata.json); \
	mapfile -t lineage <<<"$$lineage"; \
	$(CONTAINER_TOOL) build $(if $(findstring podman,$(CONTAINER_TOOL)),$(PODMAN_BUILD_FLAGS)) \
		$(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) $(IMAGE_BUILD_FLAGS) \
		--build-arg SOURCE="$$(git remote get-url origin 2>/dev/null || echo unknown)" \
		--build-arg REVISION="$$(git rev-parse HEAD)" \
		--build-arg VERSION="$$(git describe --tags --always --dirty)" \
		--build-arg CREATED="$$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
		"$${lineage[@]/#/--build-arg=}" \
		--tag $(IMAGE) .

benchmark-score: setup ## Batch-scoring benchmark: rows/s and peak memory at 100k and 1M rows (minutes)
	$(RUN) python benchmarks/score.py

benchmark-serve: setup ## Serving benchmark vs MLServer, FastAPI, bare ASGI (minutes; needs wrk)
	$(RUN) python benchmarks/serve.py

.PHONY: lint-workflows dvc-check
lint-workflows: setup ## actionlint (+shellcheck), zizmor --offline and hadolint, as CI runs them
	$(RUN) actionlint
	$(RUN) zizmor --offline .github
	$(RUN) hadolint Dockerfile

dvc-check: setup ## Fail when dvc.lock does not match the code and params (the CI check)
	$(RUN) python .github/scripts/dvc_lock_check.py
