//! Help text that clap must not re-wrap.
//!
//! clap wraps `after_help` to the terminal's width, which broke the example commands across
//! lines at arbitrary words (a copied command then fails). Literal text in a help template is
//! written as it is, so the examples and the exit codes live in the templates instead, laid
//! out by hand to fit 80 columns. The exit codes come from [`ExitCode`] itself, so `--help`
//! cannot disagree with the code.

use super::exit_code::ExitCode;
use clap::Command;

const EXAMPLES: &str = "\
Examples:
  # the whole path against a built-in demo API, into ./lake
  gatelake demo

  gatelake pull \\
      --url https://abc123.execute-api.us-east-1.amazonaws.com/prod/orders \\
      --paginate cursor --cursor-path next_cursor --records items \\
      --format parquet \\
      --dest abfss://raw@myaccount.dfs.core.windows.net/orders

  # the same, from ./gatelake.toml
  gatelake pull --job orders";

/// clap's default template (see clap_builder's `help_template.rs`) plus verbatim sections.
fn template(extra: &str) -> String {
    format!(
        "{{before-help}}{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n{{all-args}}{{after-help}}\n\n{extra}\n"
    )
}

/// The command with its examples and exit codes in `--help`.
pub fn with_help_text(cmd: Command) -> Command {
    let exit_codes = ExitCode::help_text();
    let top = template(&format!("{EXAMPLES}\n\n{exit_codes}"));
    let sub = template(&exit_codes);
    cmd.help_template(top)
        .mut_subcommand("pull", |c| c.help_template(sub.clone()))
        .mut_subcommand("auth", |c| {
            c.mut_subcommand("check", |c| c.help_template(sub.clone()))
                .mut_subcommand("plan", |c| c.help_template(sub.clone()))
        })
}
