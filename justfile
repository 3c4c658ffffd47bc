# Short aliases for `cargo xtask …` (the automation itself lives in xtask/). `just --list`.

# Build the web UI when web/ changed, then start the server (UI at http://localhost:8080).
serve *ARGS:
    cargo xtask serve {{ARGS}}

# Install and build the web UI into web/dist (checks its gzip size).
ui:
    cargo xtask ui

# Run every test: Rust (doctests, all targets), Vitest and the browser tests, the Helm chart,
# the container image and the Compose file.
test *FILTER:
    cargo xtask test {{FILTER}}

# Only the web UI's tests: Vitest, then headless Chromium against a real `stroem serve`.
test-ui:
    cargo xtask test-ui

# rustfmt check and clippy with warnings denied, then Prettier and tsc for web/.
lint:
    cargo xtask lint

# What CI runs: lint, then test.
ci:
    cargo xtask ci

# Static release archives of `stroem` and SHA256SUMS in dist/ (`just dist --target T`).
dist *ARGS:
    cargo xtask dist {{ARGS}}

# The container image localhost/stroem from the Dockerfile.
image *ARGS:
    cargo xtask image {{ARGS}}

# The image as server and worker on PostgreSQL, and the Compose file, with the quick start.
test-image *ARGS:
    cargo xtask test-image {{ARGS}}

# Lint, render and validate the Helm chart with several value sets.
test-chart:
    cargo xtask test-chart

# Run the hello-world example task locally, no server needed.
hello:
    cargo run -- run hello-world --path examples/hello-world
