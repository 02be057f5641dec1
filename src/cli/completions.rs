//! `gatelake completions SHELL`: the shell's completion script, generated from the same clap
//! definitions that parse the command line, so that it can never offer a flag that does not
//! exist. Installed by the release tarball (`completions/`) or evaluated at start-up, e.g.
//! `source <(gatelake completions bash)`.

use super::exit_code::ExitCode;
use clap::{Args, Command};
use clap_complete::Shell;
use std::io::Write;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The completion script for `shell` that completes `cmd` (the whole command line's
/// definition, handed in by the caller so that this file needs nothing above it).
pub fn script(shell: Shell, mut cmd: Command) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "gatelake", &mut out);
    out
}

/// Print the script on stdout (written whole, so that `| head` ends it without a panic).
pub fn run(args: &CompletionsArgs, cmd: Command) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(&script(args.shell, cmd))
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::Success,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::Success,
        Err(e) => {
            eprintln!("error: cannot write the completion script: {e}");
            ExitCode::Failure
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::Cli;
    use clap::CommandFactory;

    #[test]
    fn every_shell_gets_a_script_naming_the_subcommands() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::PowerShell] {
            let text = String::from_utf8(script(shell, Cli::command())).unwrap();
            for sub in ["pull", "demo", "auth", "sql", "completions", "man"] {
                assert!(text.contains(sub), "{shell}: no {sub}");
            }
        }
    }
}
