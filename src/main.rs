//! The `gatelake` binary: everything user-facing lives in `cli`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main().into()
}
