# PetroStream: the single switch. `make` (or `make help`) lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PS     := $(BIN)/petrostream
STAMP  := $(VENV)/.installed
export MLFLOW_DISABLE_TELEMETRY := true
export GX_ANALYTICS_ENABLED := false

.PHONY: help setup test test-fast lint typecheck format validate train promote export mlflow-ui local-up local-down \
        demo demo-down serve produce dashboard bench browser up down deploy cost clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) ## Create .venv and install the package with dev extras (quick when nothing changed)

test: setup ## Run the whole test suite (starts its own local AWS emulator, MLflow, browser)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-fast: setup ## Tests without the slow end-to-end ones
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

lint: setup ## Ruff (flake8 rules + import sorting), hadolint, actionlint
	$(BIN)/ruff check .
	$(BIN)/hadolint inference/Dockerfile producer/Dockerfile dashboard/Dockerfile
	$(BIN)/actionlint .github/workflows/*.yml

typecheck: setup ## mypy over the packages
	$(BIN)/mypy petrostream training inference producer dashboard

format: setup ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

DATA ?= $(or $(PETROSTREAM_DATA_DIR),../shared/data/3w)
validate: setup ## Validate 3W data with Great Expectations (DATA=dir), Data Docs under reports/
	$(PS) validate $(DATA)

local-up: setup ## Start the local AWS emulator and bootstrap resources
	$(PS) local up

local-down: ## Stop the local AWS emulator
	$(PS) local down

PROFILE ?= quick
train: setup ## Train + tune a detector, tracked in MLflow (PROFILE=quick|full, DATA=dir)
	$(PS) train --data $(DATA) --profile $(PROFILE)

promote: setup ## Gate and promote challenger -> champion, export it to S3 (VERSION=n to pick one)
	$(PS) promote $(if $(VERSION),--version $(VERSION))

export: setup ## Export the champion model to the models bucket
	$(PS) export

mlflow-ui: setup ## MLflow UI on http://127.0.0.1:5000
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db --host 127.0.0.1 --port 5000 --workers 1

compact: setup ## Compact quiet lake days into large objects sorted by well (petrostream compact)
	$(PS) compact

serve: setup ## Run the inference service (consumer + HTTP API on :8080)
	$(PS) serve

produce: setup ## Replay 3W data into Kinesis (DATA=dir)
	$(PS) produce $(DATA) --speed max

dashboard: setup ## Streamlit dashboard on http://127.0.0.1:8501 against the local lake
	$(PS) dashboard

demo: setup ## The whole pipeline locally: emulator, train, promote, serve, replay, summary
	$(PS) demo

demo-down: ## Stop everything `make demo` started
	-$(PS) demo --down

bench: setup ## Benchmarks (writes bench/out/results.json and bench/out/results.md)
	$(BIN)/python -m bench.run

browser: ## Install headless Chromium (Debian) for the dashboard browser test
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

cost: setup ## Estimated monthly AWS cost of the configured deployment
	$(PS) cost

up: ## Build everything on AWS (terraform apply, images, ECS, model export)
	./project_up.sh

down: ## Tear everything down on AWS (empty buckets, terraform destroy)
	./project_down.sh

deploy: ## Build and push images, roll the ECS services
	./project_up.sh --deploy-only

clean: ## Remove caches and local state (keeps .venv and mlruns)
	rm -rf .pytest_cache .ruff_cache reports .petrostream
