//! Exit codes: stable, documented in the README and `--help`, so CI jobs can branch on them.

use gatelake::pipeline::PullError;
use gatelake::sink::SinkError;
use gatelake::state::StateError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Success = 0,
    /// A bug or an unexpected condition.
    Failure = 1,
    /// Bad flags, env vars or job file.
    Usage = 2,
    /// Credentials missing or refused (API or storage).
    Auth = 3,
    /// The API: unreachable, an error status, or a page that cannot be read.
    Source = 4,
    /// Storage: unreachable, missing container, or a failed write.
    Sink = 5,
    /// Another run holds the job's lock, or changed its checkpoint meanwhile.
    Busy = 6,
    /// Ctrl-C or SIGTERM.
    Interrupted = 130,
}

impl ExitCode {
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
            PullError::SourceChanged { .. } => ExitCode::Usage,
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

impl From<ExitCode> for std::process::ExitCode {
    fn from(c: ExitCode) -> Self {
        std::process::ExitCode::from(c as u8)
    }
}
