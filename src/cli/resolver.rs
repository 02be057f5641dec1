//! The vocabulary every settings file shares: the [`Resolver`] that picks each value from
//! flag/env > job file > default and remembers where it came from ([`Shown`], for
//! `--show-settings`), the parsers of durations and sizes that name the flag in their error,
//! and the errors a resolution can end in (usage, exit 2; credential, exit 3).
//!
//! Kept apart from `settings.rs` so that the per-topic resolvers (`settings/*.rs`,
//! `api_auth.rs`, `azure_settings.rs`) can use it without importing the file that calls them.
//! It must never know about any particular setting.

use clap::parser::ValueSource;
use clap::ArgMatches;
use gatelake::config::{parse_byte_size, parse_duration};
use std::fmt::Display;
use std::path::Path;
use std::time::Duration;

/// A usage or configuration error: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A credential the chosen authentication needs is missing or unusable (no API key, an empty
/// token file): exit code 3, like a credential refused on any hop, so that one rule holds.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CredentialError(pub String);

/// Why the settings of a run could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Usage(#[from] UsageError),
    #[error(transparent)]
    Credential(#[from] CredentialError),
}

/// Generic over the error type so that the same helper serves functions returning
/// [`UsageError`] and those returning [`SettingsError`].
pub(super) fn usage<T, E: From<UsageError>>(msg: impl Into<String>) -> Result<T, E> {
    Err(UsageError(msg.into()).into())
}

/// A path as shown and picked.
pub fn display_path(p: &Path) -> String {
    p.display().to_string()
}

/// A duration setting (`30s`, `5m`); a bad one is a usage error naming `--flag`.
pub fn duration(flag: &str, v: Option<String>) -> Result<Duration, UsageError> {
    parse_duration(v.as_deref().unwrap_or_default())
        .map_err(|e| UsageError(format!("--{flag}: {e}")))
}

/// A byte-size setting (`128MiB`); a bad one is a usage error naming `--flag`.
pub fn size(flag: &str, v: Option<String>) -> Result<u64, UsageError> {
    parse_byte_size(v.as_deref().unwrap_or_default())
        .map_err(|e| UsageError(format!("--{flag}: {e}")))
}

/// The id of the flag that turns switch `id` off: `no_flatten` for `flatten`, `read_ahead`
/// for `no_read_ahead`.
fn twin_id(id: &str) -> String {
    match id.strip_prefix("no_") {
        Some(on) => on.to_owned(),
        None => format!("no_{id}"),
    }
}

/// [`twin_id`] as a flag: `--no-flatten`.
fn twin_flag(id: &str) -> String {
    format!("--{}", twin_id(id).replace('_', "-"))
}

/// One resolved setting, for `--show-settings`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Shown {
    pub key: String,
    pub value: String,
    pub origin: String,
}

/// Picks each setting's value from its sources and records where it came from.
pub struct Resolver<'a> {
    matches: &'a ArgMatches,
    pub shown: Vec<Shown>,
}

impl<'a> Resolver<'a> {
    pub fn new(matches: &'a ArgMatches) -> Self {
        Self {
            matches,
            shown: Vec::new(),
        }
    }

    /// The flag or variable that gave setting `id` on this command line (`flag --x`, `env
    /// GATELAKE_X`).
    pub fn origin_of_cli(&self, id: &str) -> String {
        match self.matches.value_source(id) {
            // Every setting's variable is GATELAKE_ + its id in upper case (args.rs).
            Some(ValueSource::EnvVariable) => format!("env GATELAKE_{}", id.to_ascii_uppercase()),
            _ => format!("flag --{}", id.replace('_', "-")),
        }
    }

    /// flag/env > job file > default; records the choice.
    pub fn pick<T: Clone + Display>(
        &mut self,
        id: &str,
        cli: Option<T>,
        job: Option<T>,
        default: Option<T>,
    ) -> Option<T> {
        // Only a value that came from the command line or a variable asks clap where it came
        // from: `id` need not be an argument of this subcommand otherwise.
        let cli = cli.map(|v| (v, self.origin_of_cli(id)));
        self.pick_from(id, cli, job, default)
    }

    /// [`Self::pick`], with the flag or variable that gave `cli` named by the caller.
    fn pick_from<T: Clone + Display>(
        &mut self,
        id: &str,
        cli: Option<(T, String)>,
        job: Option<T>,
        default: Option<T>,
    ) -> Option<T> {
        let (value, origin) = if let Some((v, origin)) = cli {
            (Some(v), origin)
        } else if let Some(v) = job {
            (Some(v), "job file".to_string())
        } else if let Some(v) = default {
            (Some(v), "default".to_string())
        } else {
            (None, String::new())
        };
        if let Some(v) = &value {
            self.shown.push(Shown {
                key: id.replace('_', "-"),
                value: v.to_string(),
                origin,
            });
        }
        value
    }

    /// A switch (a flag without a value, e.g. `--flatten`): off when its twin is on the
    /// command line (`off`: `--no-flatten`, or `--read-ahead` for `--no-read-ahead`; with the
    /// switch on the same command line the later of the two wins, and a flag beats a
    /// variable); on when the flag or its variable turns it on; off when its variable says so
    /// (`GATELAKE_FLATTEN=false`). Either overrides a job file's value; otherwise the job
    /// file's, else `default`. Records the choice and what made it.
    pub fn switch(
        &mut self,
        id: &str,
        on: bool,
        off: bool,
        job: Option<bool>,
        default: Option<bool>,
    ) -> Option<bool> {
        let switch_later = off
            && self.given_on_command_line(id)
            && self.matches.index_of(id) > self.matches.index_of(&twin_id(id));
        let cli = if off && !switch_later {
            Some((false, format!("flag {}", twin_flag(id))))
        } else if on {
            Some((true, self.origin_of_cli(id)))
        } else if self.given_in_env(id) {
            Some((false, self.origin_of_cli(id)))
        } else {
            None
        };
        self.pick_from(id, cli, job, default)
    }

    /// Record a secret's presence without its value.
    pub fn note_secret(&mut self, id: &str, origin: String) {
        self.shown.push(Shown {
            key: id.replace('_', "-"),
            value: "***".into(),
            origin,
        });
    }

    pub fn given_on_command_line(&self, id: &str) -> bool {
        self.matches.value_source(id) == Some(ValueSource::CommandLine)
    }

    pub fn given_in_env(&self, id: &str) -> bool {
        self.matches.value_source(id) == Some(ValueSource::EnvVariable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_switchs_twin_adds_or_drops_no() {
        assert_eq!(twin_id("flatten"), "no_flatten");
        assert_eq!(twin_flag("synapse_optimized"), "--no-synapse-optimized");
        assert_eq!(twin_id("no_read_ahead"), "read_ahead");
        assert_eq!(twin_flag("no_read_ahead"), "--read-ahead");
    }
}
