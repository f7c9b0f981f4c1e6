# Entry points: `make run` sets up a fresh machine and generates text with the default model;
# `make test` is the whole test suite (what CI runs). Everything it installs is in scripts/setup.sh.
.PHONY: setup build run test unit-test py-test asan-test fuzz clean

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

# libFuzzer targets of every parser (fuzz/): a separate clang build in build-fuzz/, each target run
# for FUZZ_SECONDS (JOBS targets at a time: each fuzzer runs on one core), then every saved crasher
# in fuzz/crashers/ replayed (they must all pass).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = fuzz_config_json fuzz_safetensors fuzz_gguf fuzz_tokenizer_json fuzz_chat_template fuzz_prompt
fuzz:
	@command -v clang++ >/dev/null || { echo "make fuzz: needs clang++ with libFuzzer (apt-get install clang)" >&2; exit 1; }
	cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DMK_FUZZ=ON -DMK_CUDA=OFF \
	  -DMK_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build-fuzz --target mk_fuzz_all -j$(JOBS)
	@fail=0; \
	printf '%s\n' $(FUZZ_TARGETS) | xargs -P $(JOBS) -I{} fuzz/run.sh {} $(FUZZ_SECONDS) || fail=1; \
	for t in $(FUZZ_TARGETS); do fuzz/run.sh --replay $$t || fail=1; done; \
	exit $$fail

test: setup
	$(MAKE) unit-test asan-test py-test
	$(MAKE) fuzz FUZZ_SECONDS=$(if $(filter command line,$(origin FUZZ_SECONDS)),$(FUZZ_SECONDS),45)

clean:
	rm -rf build build-asan build-fuzz
