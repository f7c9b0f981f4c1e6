# Entry points: `make run` sets up a fresh machine and generates text with the default model;
# `make test` is the whole test suite (what CI runs). Everything it installs is in scripts/setup.sh.
.PHONY: setup build run test unit-test py-test asan-test clean

JOBS ?= $(shell nproc)

setup:
	scripts/setup.sh

build:
	cmake --preset default >/dev/null
	cmake --build --preset default -j$(JOBS)

run: setup
	./build/src/cli/mk generate

unit-test: build
	ctest --preset default -j$(JOBS)

py-test: build
	.venv/bin/python -m pytest -q tests/py

# The unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
asan-test:
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j$(JOBS)
	ctest --preset asan -j$(JOBS)

test: setup
	$(MAKE) unit-test asan-test py-test

clean:
	rm -rf build build-asan
