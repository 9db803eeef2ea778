# The two commands: `make run` (demo engine) and `make test` (everything CI runs).
# Both install missing Debian packages first (packaging/install-deps.sh).

CONFIG ?= packaging/examples/loa-engine.toml
FUZZ_SECONDS ?= 60

.PHONY: run test deps build release asan fuzz bench deb clean

deps:
	@packaging/install-deps.sh

build: deps
	cmake --preset ci >/dev/null
	cmake --build --preset ci

release: deps
	cmake --preset release >/dev/null
	cmake --build --preset release

run: release
	build/release/apps/loa-engine/loa-engine --config $(CONFIG)

test: build
	ctest --preset ci

asan: deps
	cmake --preset asan >/dev/null
	cmake --build --preset asan
	ctest --preset asan

# Builds the libFuzzer targets with clang and runs each for FUZZ_SECONDS.
fuzz: deps
	cmake --preset fuzz >/dev/null
	cmake --build --preset fuzz
	@for f in build/fuzz/tests/fuzz_*; do \
	  name=$${f##*/fuzz_}; mkdir -p build/fuzz/corpus/$$name; \
	  echo "== $$name"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) build/fuzz/corpus/$$name tests/fuzz/corpus/$$name || exit 1; \
	done

bench: release
	@echo "run e.g.: build/release/bench/loa-bench fanout --clusters 10000 --seconds 60 --json"

# Debian package of the release build (build/release/loa_*.deb).
deb: release
	cd build/release && cpack -G DEB

clean:
	rm -rf build
