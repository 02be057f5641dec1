//! `gatelake --version`: which build this is — version, git commit, target and build profile —
//! so that a bug report from a notebook or a CI log names exactly what ran. `--output json`
//! gives the same as one object.
//!
//! The flag is answered before clap parses anything: `--output` belongs to the subcommands, so
//! clap would refuse `gatelake --version --output json`. Only a command line made of nothing
//! but the version flag and `--output` is answered here; anything else goes to clap as before
//! (and `GATELAKE_OUTPUT` does not turn the version into JSON: it is meant for runs).

use super::exit_code::ExitCode;
use std::ffi::OsString;

/// The build facts `build.rs` recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BuildInfo {
    pub name: &'static str,
    pub version: &'static str,
    /// The full commit hash; `None` for a build from a source archive without one.
    pub commit: Option<&'static str>,
    pub target: &'static str,
    pub profile: &'static str,
}

impl BuildInfo {
    /// This binary's.
    pub fn current() -> Self {
        let commit = env!("GATELAKE_BUILD_COMMIT");
        BuildInfo {
            name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
            commit: (!commit.is_empty()).then_some(commit),
            target: env!("GATELAKE_BUILD_TARGET"),
            profile: env!("GATELAKE_BUILD_PROFILE"),
        }
    }

    /// One line whose second word is the version (what scripts cut out):
    /// `gatelake 0.1.0 (commit 1a2b3c4d5e6f, x86_64-unknown-linux-gnu, release build)`.
    pub fn line(&self) -> String {
        let commit = match self.commit {
            Some(c) => c.get(..12).unwrap_or(c),
            None => "unknown",
        };
        format!(
            "{} {} (commit {commit}, {}, {} build)",
            self.name, self.version, self.target, self.profile
        )
    }
}

/// How the version was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionRequest {
    Text,
    Json,
}

/// `Some` when the arguments (after the program's name) are only `-V`/`--version`, with at
/// most an `--output text|json`; `None` leaves the command line to clap.
pub fn requested(raw: &[OsString]) -> Option<VersionRequest> {
    let mut asked = false;
    let mut mode = VersionRequest::Text;
    let mut args = raw.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(arg) = args.next() {
        let output = match arg.as_ref() {
            "-V" | "--version" => {
                asked = true;
                continue;
            }
            "--output" => args.next()?.into_owned(),
            other => other.strip_prefix("--output=")?.to_string(),
        };
        mode = match output.as_str() {
            "text" => VersionRequest::Text,
            "json" => VersionRequest::Json,
            _ => return None,
        };
    }
    asked.then_some(mode)
}

/// Print the version as asked.
pub fn print(request: VersionRequest) -> ExitCode {
    let info = BuildInfo::current();
    match request {
        VersionRequest::Text => println!("{}", info.line()),
        VersionRequest::Json => match serde_json::to_string(&info) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("error: cannot encode the version: {e}");
                return ExitCode::Failure;
            }
        },
    }
    ExitCode::Success
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        std::iter::once("gatelake")
            .chain(v.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn only_a_version_command_line_is_answered_here() {
        use VersionRequest::{Json, Text};
        let cases: &[(&[&str], Option<VersionRequest>)] = &[
            (&["--version"], Some(Text)),
            (&["-V"], Some(Text)),
            (&["--version", "--output", "json"], Some(Json)),
            (&["--output=json", "-V"], Some(Json)),
            (&["--output", "text", "--version"], Some(Text)),
            (&[], None),
            (&["--output", "json"], None),
            (&["--version", "--output", "yaml"], None),
            (&["--version", "--output"], None),
            (&["pull", "--version"], None),
            (&["--version", "demo"], None),
        ];
        for (given, expected) in cases {
            assert_eq!(requested(&args(given)), *expected, "{given:?}");
        }
    }

    #[test]
    fn the_line_names_version_commit_target_and_profile() {
        let info = BuildInfo {
            name: "gatelake",
            version: "1.2.3",
            commit: Some("0123456789abcdef0123"),
            target: "x86_64-unknown-linux-gnu",
            profile: "release",
        };
        assert_eq!(
            info.line(),
            "gatelake 1.2.3 (commit 0123456789ab, x86_64-unknown-linux-gnu, release build)"
        );
        let unknown = BuildInfo {
            commit: None,
            ..info
        };
        assert!(unknown.line().contains("(commit unknown,"));
    }

    #[test]
    fn this_build_knows_its_target_and_profile() {
        let info = BuildInfo::current();
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        assert!(info.target.contains('-'), "{info:?}");
        assert!(!info.profile.is_empty(), "{info:?}");
    }
}
