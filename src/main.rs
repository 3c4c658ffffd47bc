//! The `stroem` binary: parse the command line and dispatch to the verb's module.

fn main() -> std::process::ExitCode {
    stroem::install_crypto_provider();
    stroem::cli::main()
}
