//! Argument errors as the caller asked to see them, and errors that name the environment
//! variable they came from.
//!
//! clap parses before any of our code runs, so a bad flag or enum value would otherwise leave
//! stdout empty even under `--output json`, and a notebook's `json.loads(run.stdout)` would
//! raise. Whether JSON was asked for is therefore read from the raw arguments and
//! `GATELAKE_OUTPUT` first, and every clap error becomes the same failure object the rest of
//! the binary prints. And since a `GATELAKE_*` variable set long ago in a CI file is easy to
//! forget, an error about a value that came from one names the variable and its value, not
//! only the flag the user never typed.

use super::exit_code::ExitCode;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{ArgMatches, Command};
use std::ffi::OsString;
use std::sync::OnceLock;

/// Whether the caller asked for JSON output: `--output json` / `--output=json` on the command
/// line, else `GATELAKE_OUTPUT=json` (a flag beats the variable, as everywhere).
pub fn json_requested(raw: &[OsString], env: Option<&OsString>) -> bool {
    let mut flag = None;
    let mut args = raw.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        if arg == "--output" {
            flag = args.next().map(|v| v.into_owned());
        } else if let Some(v) = arg.strip_prefix("--output=") {
            flag = Some(v.to_string());
        }
    }
    match flag {
        Some(v) => v == "json",
        None => env.is_some_and(|v| v == "json"),
    }
}

/// A setting whose value came from its environment variable.
#[derive(Debug, Clone)]
struct FromEnv {
    long: String,
    var: String,
    /// `None` for secrets (`hide_env_values`): their value is never repeated.
    value: Option<String>,
}

static FROM_ENV: OnceLock<Vec<FromEnv>> = OnceLock::new();

/// Remember which settings came from environment variables (the innermost subcommand's), so
/// that [`name_env_source`] can rewrite errors about them.
pub fn remember_env_sources(cmd: &Command, matches: &ArgMatches) {
    let (mut cmd, mut matches) = (cmd, matches);
    while let Some((name, sub)) = matches.subcommand() {
        match cmd.find_subcommand(name) {
            Some(c) => (cmd, matches) = (c, sub),
            None => break,
        }
    }
    let mut found = Vec::new();
    for arg in cmd.get_arguments() {
        let (Some(long), Some(var)) = (arg.get_long(), arg.get_env()) else {
            continue;
        };
        if matches.value_source(arg.get_id().as_str()) != Some(ValueSource::EnvVariable) {
            continue;
        }
        let var = var.to_string_lossy().into_owned();
        // A URL's password or SAS query never reaches an error message.
        let value = if arg.is_hide_env_values_set() {
            None
        } else {
            std::env::var(&var)
                .ok()
                .map(|v| gatelake::sink::destination::printable(&v))
        };
        found.push(FromEnv {
            long: long.to_string(),
            var,
            value,
        });
    }
    let _ = FROM_ENV.set(found);
}

/// An error message that starts with a flag (`--format: …`, `--api-auth api-key needs …`)
/// whose value came from its environment variable, rewritten to start with the variable:
/// `GATELAKE_FORMAT=xml: …`, `GATELAKE_API_AUTH=api-key needs …`.
pub fn name_env_source(message: &str) -> String {
    let Some(from_env) = FROM_ENV.get() else {
        return message.to_string();
    };
    for f in from_env {
        let flag = format!("--{}", f.long);
        let Some(rest) = message.strip_prefix(&flag) else {
            continue;
        };
        // `--format` must not match `--format-version`.
        if rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-') {
            continue;
        }
        let named = match &f.value {
            Some(v) => format!("{}={v}", f.var),
            None => f.var.clone(),
        };
        // `--api-auth api-key needs …`: the value follows the flag; say it once.
        let rest = match &f.value {
            Some(v) => rest.strip_prefix(&format!(" {v}")).unwrap_or(rest),
            None => rest,
        };
        return format!("{named}{rest}");
    }
    message.to_string()
}

/// Report a clap error the way the caller asked and return its exit code. Help and version
/// requests print their text and succeed, whatever the output mode.
pub fn report_clap_error(cmd: &Command, e: &clap::Error, raw: &[OsString], json: bool) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            return ExitCode::Success;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand if !json => {
            let _ = e.print();
            return ExitCode::Usage;
        }
        _ => {}
    }
    let rendered = e.render().to_string();
    let text = rendered.trim();
    let text = text.strip_prefix("error: ").unwrap_or(text);
    let message = match env_source_of_bad_value(cmd, e, raw) {
        Some(named) => format!("{named}: {text}"),
        None if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            format!("a subcommand is needed\n{text}")
        }
        None => text.to_string(),
    };
    super::report_failure(&message, ExitCode::Usage, json_mode(json));
    ExitCode::Usage
}

fn json_mode(json: bool) -> super::args::OutputMode {
    if json {
        super::args::OutputMode::Json
    } else {
        super::args::OutputMode::Text
    }
}

/// `GATELAKE_X=value` when clap refused a value that came from that variable rather than
/// from the command line (clap names only the flag).
fn env_source_of_bad_value(cmd: &Command, e: &clap::Error, raw: &[OsString]) -> Option<String> {
    if !matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let long = arg.strip_prefix("--")?.split([' ', '=']).next()?;
    let flag = format!("--{long}");
    let on_command_line = raw.iter().skip(1).any(|a| {
        let a = a.to_string_lossy();
        a == flag || a.starts_with(&format!("{flag}="))
    });
    if on_command_line {
        return None;
    }
    let var = find_env_of(cmd, long)?;
    let value = gatelake::sink::destination::printable(&std::env::var(&var).ok()?);
    Some(format!("{var}={value}"))
}

/// The environment variable of the flag `--long`, searched through every subcommand (the
/// variable names are the same wherever a flag appears).
fn find_env_of(cmd: &Command, long: &str) -> Option<String> {
    let own = cmd
        .get_arguments()
        .find(|a| a.get_long() == Some(long) && !a.is_hide_env_values_set())
        .and_then(|a| a.get_env())
        .map(|v| v.to_string_lossy().into_owned());
    own.or_else(|| cmd.get_subcommands().find_map(|c| find_env_of(c, long)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn raw(args: &[&str]) -> Vec<OsString> {
        std::iter::once("gatelake")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn json_is_read_from_raw_args_then_env() {
        let json = OsString::from("json");
        let text = OsString::from("text");
        let cases: [(&[&str], Option<&OsString>, bool); 8] = [
            (&["pull", "--output", "json"], None, true),
            (&["pull", "--output=json"], None, true),
            (&["pull", "--bogus", "--output", "json"], None, true),
            (&["pull"], Some(&json), true),
            (&["pull", "--output", "text"], Some(&json), false),
            (&["pull"], Some(&text), false),
            (&["pull"], None, false),
            (&["pull", "--", "--output", "json"], None, false),
        ];
        for (args, env, want) in cases {
            assert_eq!(json_requested(&raw(args), env), want, "{args:?} {env:?}");
        }
    }
}
