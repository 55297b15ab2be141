# The two commands of the README. `make run` serves the embedded default model; `make test` runs
# every test. Both install what they need first.
JOBS ?= $(shell nproc)

.PHONY: run test deps test-deps build build-asan clean format

run: deps build
	./build/release/llmserve serve

test: test-deps build-asan
	ctest --preset asan -j $(JOBS)

deps:
	@scripts/install_deps.sh

test-deps:
	@scripts/install_deps.sh --test

build:
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS)

build-asan:
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)

format:
	clang-format -i $$(git ls-files 'src/*.h' 'src/*.cpp' 'src/*.cu' 'src/*.cuh' 'tests/*.h' 'tests/*.cpp')

clean:
	rm -rf build
