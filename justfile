# Short aliases for `cargo xtask …` (the automation itself lives in xtask/). `just --list`.

# Build the web UI when web/ changed, then start the server (UI at http://localhost:8080).
serve *ARGS:
    cargo xtask serve {{ARGS}}

# Install and build the web UI into web/dist (checks its gzip size).
ui:
    cargo xtask ui

# Run every test: Rust (doctests, all targets), then Vitest and the browser tests.
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

# Release build of `stroem` packed into dist/.
dist:
    cargo xtask dist

# Run the hello-world example task locally, no server needed.
hello:
    cargo run -- run hello-world --path examples/hello-world
