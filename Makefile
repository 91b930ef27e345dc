# tinyml: `make demo` and `make test` bootstrap everything from nothing:
# Debian packages (cross compiler, QEMU), a virtualenv in .venv with the
# project installed editable (setuptools maps tinyml.codegen to codegen/ and
# tinyml.data.* to boards/, templates/, firmware/, as in the wheel) and its
# extras, then run.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm gdb-multiarch cmake espeak-ng flite \
	festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
PYTEST_ARGS ?=
JOBS ?= 2

.PHONY: all bootstrap system-deps demo test test-fast fuzz models clean

all: bootstrap

system-deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(VENV)/.deps: pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q ".[all]"
# quantization-aware training (tinyml.train.qat): tf-keras and tfmot without their dependencies, which
# would pull the full tensorflow over tensorflow-cpu (see the note in pyproject.toml)
	$(BIN)/python -m pip install -q --no-deps "tf-keras==2.21.*" "tensorflow-model-optimization==0.8.*"
	$(BIN)/python -m pip install -q "dm-tree"
	@touch $@

$(VENV)/.installed: $(VENV)/.deps pyproject.toml
	$(BIN)/python -m pip install -q --no-deps -e .
	@rm -rf build
	@touch $@

bootstrap: system-deps $(VENV)/.installed

# Build (once, then cached in .cache/models) every test model with TensorFlow.
models: bootstrap
	$(BIN)/python -m tests.modelgen --zoo && $(BIN)/python -m tests.modelgen

demo: bootstrap
	$(BIN)/tinyml demo kws

test: bootstrap models
	$(BIN)/python -m pytest -q -n $(JOBS) --durations=25 $(PYTEST_ARGS)

# Everything but the slow tests.
test-fast: bootstrap models
	$(BIN)/python -m pytest -q -n $(JOBS) -m "not slow" $(PYTEST_ARGS)

# The fuzz tests at full length (make test runs them shorter): FUZZ_CASES structure-aware mutants (make test
# runs 250; each accepted one built with ASan/UBSan and compared with TFLM), 10,000 byte-level mutations of
# models (make test: 4,000) and 10,000 adversarial host-link frames (make test: 3,000).
FUZZ_CASES ?= 5000
FUZZ_SEED ?= 2026
fuzz: bootstrap models
	TINYML_FUZZ_LONG=1 TINYML_FUZZ_CASES=$(FUZZ_CASES) TINYML_FUZZ_SEED=$(FUZZ_SEED) $(BIN)/python -m pytest \
		-q -s -p no:xdist -k fuzz tests/test_fuzz_semantic.py tests/test_import.py tests/test_hostlink.py $(PYTEST_ARGS)

clean:
	rm -rf build dist *.egg-info .pytest_cache
