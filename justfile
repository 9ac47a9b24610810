# inferbench's everyday commands (https://just.systems). `just` lists them.
# Builds go to $CARGO_TARGET_DIR (default: target/).

set shell := ["bash", "-euo", "pipefail", "-c"]

target := env_var_or_default("CARGO_TARGET_DIR", "target")
bin := target / "release" / "inferbench"

# List the recipes
default:
    @just --list

# Every test (the README's command: installs what the tests need first)
test *ARGS:
    ./scripts/test {{ARGS}}

# What CI runs: format, clippy -D warnings, every test, promtool on /metrics
ci:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    ./scripts/test
    ./scripts/promtool-check

# The benchmarks of the binary (capacity, router_overhead, scheduling, compare_noise), or one
bench NAME="":
    cargo bench -p inferbench {{ if NAME == "" { "" } else { "--bench " + NAME } }}

# Build the release binary
build:
    cargo build --release -p inferbench

# `inferbench run` (no arguments: the built-in suite on the embedded fleet), e.g. just run --scale 0.2
run *ARGS: build
    {{bin}} run {{ARGS}}

# A simulated vLLM fleet, e.g. just mock --instances 4 --port 8000
mock *ARGS: build
    {{bin}} mock {{ARGS}}

# Fuzz the parsers: just fuzz [SECONDS] [TARGET...]
fuzz *ARGS:
    ./scripts/fuzz {{ARGS}}

# Kubernetes manifests of an example scenario (default examples/routing-overhead.yaml)
render FILE="examples/routing-overhead.yaml" *ARGS: build
    {{bin}} k8s render {{FILE}} {{ARGS}}

# Shards = one run: unsharded vs N shard processes, merged (scripts/shard-equivalence)
shards *ARGS: build
    ./scripts/shard-equivalence --bin {{bin}} {{ARGS}}

# `promtool check metrics` on the mock's and the router's /metrics
promtool:
    ./scripts/promtool-check
