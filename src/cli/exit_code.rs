//! Exit codes: stable, documented in the README and `--help`, so CI jobs can branch on them.

use gatelake::run::PullError;
use gatelake::sink::SinkError;
use gatelake::state::StateError;

/// The one rule, stated in `--help` and the README beside the table.
pub const RULE: &str = "A credential that is missing, unusable or refused on any hop (the API, AWS, Azure, storage) is always 3, never 2.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Success = 0,
    Failure = 1,
    Usage = 2,
    Auth = 3,
    Source = 4,
    Sink = 5,
    Busy = 6,
    Interrupted = 130,
}

impl ExitCode {
    /// Every code, in the order the README's table lists them.
    pub const ALL: [ExitCode; 8] = [
        ExitCode::Success,
        ExitCode::Failure,
        ExitCode::Usage,
        ExitCode::Auth,
        ExitCode::Source,
        ExitCode::Sink,
        ExitCode::Busy,
        ExitCode::Interrupted,
    ];

    /// What the code means, as the README's table and `--help` say it (a test keeps the
    /// README's table equal to [`Self::markdown_table`]).
    pub fn meaning(self) -> &'static str {
        match self {
            ExitCode::Success => "success: the run did what was asked",
            ExitCode::Failure => "unexpected error (a bug: please report it)",
            ExitCode::Usage => "usage or configuration: a bad flag, env var, job file or destination",
            ExitCode::Auth => "authentication: a credential missing, unusable or refused on any hop (API key or bearer token not given, no Azure identity, STS AccessDenied, storage 401/403)",
            ExitCode::Source => "the source API: unreachable, an error status, an untrusted certificate, a page that cannot be read, records that drift from the schema, a Retry-After past --max-retry-after, or an incomplete listing (a partial run: cut by --max-pages, or a record count that differs from the API's total or --expect-rows)",
            ExitCode::Sink => "storage: unreachable, a missing container, or a failed write",
            ExitCode::Busy => "busy: another run holds the job's lock, or changed its checkpoint during this run",
            ExitCode::Interrupted => "interrupted (Ctrl-C or SIGTERM)",
        }
    }

    /// A short label for `--help`.
    fn label(self) -> &'static str {
        match self {
            ExitCode::Success => "ok",
            ExitCode::Failure => "unexpected error",
            ExitCode::Usage => "usage or configuration",
            ExitCode::Auth => {
                "authentication (a credential missing, unusable or refused on any hop)"
            }
            ExitCode::Source => "source API, or an incomplete (partial) listing",
            ExitCode::Sink => "storage",
            ExitCode::Busy => "busy (another run holds the job)",
            ExitCode::Interrupted => "interrupted",
        }
    }

    /// The README's exit-code table.
    pub fn markdown_table() -> String {
        let mut out = String::from("| code | meaning |\n| --- | --- |\n");
        for c in Self::ALL {
            out.push_str(&format!("| {} | {} |\n", c as u8, c.meaning()));
        }
        out
    }

    /// The exit-code lines of `--help`, one code per line so that clap's wrapping cannot
    /// break them mid-phrase.
    pub fn help_text() -> String {
        let mut out = String::from("Exit codes:\n");
        for c in Self::ALL {
            out.push_str(&format!("  {:>3}  {}\n", c as u8, c.label()));
        }
        out.push_str(&wrap(RULE, 78));
        out
    }

    pub fn kind(self) -> &'static str {
        match self {
            ExitCode::Success => "ok",
            ExitCode::Failure => "internal",
            ExitCode::Usage => "usage",
            ExitCode::Auth => "auth",
            ExitCode::Source => "source",
            ExitCode::Sink => "sink",
            ExitCode::Busy => "busy",
            ExitCode::Interrupted => "interrupted",
        }
    }

    pub fn of_pull_error(e: &PullError) -> Self {
        match e {
            PullError::Source(s) if s.is_auth() => ExitCode::Auth,
            PullError::Source(_)
            | PullError::Extract { .. }
            | PullError::Paginate { .. }
            | PullError::Encode { .. }
            | PullError::Watermark(_)
            | PullError::Unskippable { .. }
            | PullError::Incomplete { .. } => ExitCode::Source,
            PullError::Sink(s) => Self::of_sink_error(s),
            PullError::State(StateError::LostRace { .. }) => ExitCode::Busy,
            PullError::State(StateError::Sink(s)) => Self::of_sink_error(s),
            PullError::State(_) => ExitCode::Sink,
            PullError::SourceChanged { .. } | PullError::Request(_) => ExitCode::Usage,
            PullError::Interrupted { .. } => ExitCode::Interrupted,
            PullError::PreviousRun(_) => ExitCode::Sink,
            PullError::Internal(_) => ExitCode::Failure,
        }
    }

    pub fn of_sink_error(e: &SinkError) -> Self {
        match e {
            SinkError::Auth { .. } | SinkError::Credentials(_) => ExitCode::Auth,
            SinkError::InvalidDestination { .. } => ExitCode::Usage,
            SinkError::Busy { .. } => ExitCode::Busy,
            _ => ExitCode::Sink,
        }
    }
}

/// Word-wrap `text` at `width` columns (the help template prints it as it is).
fn wrap(text: &str, width: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.len() + 1 + word.len() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines.join("\n")
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(c: ExitCode) -> Self {
        std::process::ExitCode::from(c as u8)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The README's table is the enum's table, character for character: a code or a meaning
    /// changed on one side only fails here.
    #[test]
    fn readme_exit_code_table_matches_the_enum() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        let section = readme
            .split("## Exit codes")
            .nth(1)
            .expect("README has an '## Exit codes' section");
        let section = section.split("\n## ").next().unwrap_or(section);
        let table: String = section
            .lines()
            .filter(|l| l.starts_with('|'))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            table,
            ExitCode::markdown_table(),
            "README's exit-code table"
        );
        assert!(section.contains(RULE), "README states the rule: {RULE}");
    }

    #[test]
    fn codes_are_distinct_and_complete() {
        let mut seen: Vec<u8> = ExitCode::ALL.iter().map(|c| *c as u8).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, vec![0, 1, 2, 3, 4, 5, 6, 130]);
        for c in ExitCode::ALL {
            assert!(ExitCode::help_text().contains(c.label()));
        }
    }
}
