# Short aliases for `cargo xtask …` (the automation itself lives in xtask/). `just --list`.

# Run every test (doctests, then all targets; cargo-nextest when installed).
test *FILTER:
    cargo xtask test {{FILTER}}

# rustfmt check and clippy with warnings denied.
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
