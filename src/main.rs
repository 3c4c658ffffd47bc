//! The `stroem` binary: parse the command line and dispatch to the verb's module.

fn main() -> std::process::ExitCode {
    stroem::cli::main()
}
