//! gatelake: pull paged data from an AWS API Gateway endpoint, write it as compressed,
//! size-bounded chunks, and stage them into ADLS Gen2 (or a local folder) for Synapse.
//!
//! The library is the engine. It never touches clap, indicatif, stdout or
//! `std::process::exit`: the binary (`src/main.rs` + `src/cli/`) parses flags, resolves
//! settings into a [`config::PullConfig`], renders progress from [`report::Event`]s and maps
//! errors to exit codes.
//!
//! The data's path, one module per stage:
//! `identity` → `source` (client, paginate, extract) → `encode` (chunk writer) → `sink`
//! (atomic put) → `load` (manifest, `_SUCCESS`), orchestrated by `pipeline`.

pub mod clock;
pub mod config;
pub mod demo;
pub mod encode;
pub mod http;
pub mod identity;
pub mod load;
pub mod pipeline;
pub mod report;
pub mod retry;
pub mod secret;
pub mod sink;
pub mod source;
pub mod state;
pub mod upstream;
