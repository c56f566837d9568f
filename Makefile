# The two commands a newcomer needs: `make demo` and `make test`.
# Everything else is a step of those two.
BUILD      ?= build
BUILD_TYPE ?= Release
JOBS       ?= $(shell nproc)
PY         := .venv/bin/python
FIXTURES   := $(BUILD)/fixtures

# ccache is wired in CMakeLists.txt (with the settings precompiled headers need).
export CCACHE_MAXSIZE ?= 5G

.PHONY: setup configure build fixtures test demo conformance bench fuzz clean

setup:
	@bash scripts/setup.sh

$(BUILD)/build.ninja: CMakeLists.txt
	@$(MAKE) --no-print-directory configure

configure: setup
	CMAKE_POLICY_VERSION_MINIMUM=3.5 cmake -S . -B $(BUILD) -G Ninja \
	  -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DCMAKE_PREFIX_PATH="$$($(PY) -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')" \
	  -DPython_EXECUTABLE=$(CURDIR)/$(PY)

build: setup $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# Reference fixtures written by tools/oracle/ with transformers and tokenizers;
# each script skips its work when its inputs have not changed.
fixtures: setup
	@bash tools/oracle/make_fixtures.sh $(FIXTURES)

test: build fixtures
	cd $(BUILD) && CHARACTER_FIXTURES=$(CURDIR)/$(FIXTURES) ctest --output-on-failure -j $(JOBS) --timeout 900

demo: build
	@bash scripts/demo.sh $(BUILD)

conformance: build fixtures
	@bash tools/oracle/conformance.sh $(BUILD) $(FIXTURES)

bench: build fixtures
	@bash bench/run.sh $(BUILD) $(FIXTURES)

# libFuzzer harnesses (fuzz/) with clang, ASan and UBSan, FUZZ_SECONDS (60) each.
fuzz:
	@bash scripts/fuzz.sh

clean:
	rm -rf $(BUILD)
