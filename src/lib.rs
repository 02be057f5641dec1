//! gatelake: pull paged data from an AWS API Gateway endpoint, write it as compressed,
//! size-bounded chunks, and stage them into ADLS Gen2 (or a local folder) for Synapse.
//!
//! The library is the engine. It never touches clap, indicatif, stdout or
//! `std::process::exit`: the binary (`src/main.rs` + `src/cli/`) parses flags, resolves
//! settings into a [`config::PullConfig`] and [`engine::IdentitySettings`], has
//! [`engine::Engine`] build the parts of the run, renders progress from [`report::Event`]s and
//! maps errors to exit codes.
//!
//! Features: `cli` (default) builds the binary and brings its crates (clap, indicatif,
//! tracing-subscriber, anyhow, toml) and `demo` (the demo API, module `demo`, on axum). An
//! embedding program takes the library with `default-features = false`.
//!
//! The data's path, one module per stage:
//! `identity` → `source` (client, paginate, extract) → `encode` (chunk writer) → `sink`
//! (atomic put) → `state` (checkpoint) → `load` (manifest, `_SUCCESS`); `pipeline` runs the
//! stages of one unit of work, `run` the run around it (lock, resume, commit); `engine` builds
//! the parts from the settings.

pub(crate) mod buffers;
pub mod clock;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod encode;
pub mod engine;
pub mod http;
pub mod identity;
pub mod load;
pub mod objects;
pub mod partition;
pub mod pipeline;
pub mod plan;
pub mod report;
pub mod retry;
pub mod run;
pub mod run_tag;
pub mod sample;
pub mod secret;
pub mod sink;
pub mod source;
pub mod state;
pub mod upstream;
