# Thin wrappers over cargo and the `icl` CLI. One build profile (release) serves binaries, tests
# and benchmarks, so a cold CI build compiles the dependency graph once.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/icl-target
PROFILE ?= quick
JOBS ?= $(shell nproc)
ICL := $(CARGO_TARGET_DIR)/release/icl

.PHONY: build reproduce test test-slurm diff bench status clean

# Binaries and tests in one cargo call: cargo unifies dependency features over the selected
# targets, so building them separately would compile the heavy dependencies twice.
build:
	cargo build --release --workspace --bins --tests

reproduce: build
	$(ICL) reproduce --profile $(PROFILE) --jobs $(JOBS)

status: build
	$(ICL) status --profile $(PROFILE)

test: build
	cargo test --release --workspace

# The Slurm executor against a real single-node Slurm (ci/slurm/; SKIP when Slurm is absent).
test-slurm: build
	ci/slurm/test.sh

# Run the `ci` profile into a scratch folder and compare its claim table with the committed one.
diff: build
	@out=$$(mktemp -d) && \
	$(ICL) reproduce --profile ci --jobs $(JOBS) --publish-dir $$out && \
	$(ICL) diff results/ci/claims.parquet $$out/claims.parquet

# Runs the binary `make build` built: `cargo run -p icl-train` would resolve dependency features
# for icl-train alone and recompile ~100 crates into the same target dir.
bench: build
	$(CARGO_TARGET_DIR)/release/icl-train bench

clean:
	rm -rf data/objects data/runs data/index data/logs data/tmp data/resume
