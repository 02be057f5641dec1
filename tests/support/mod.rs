//! Shared test support: the real components the integration tests run against.
//! - `azurite`: the Azurite emulator started by `scripts/test.sh` (address in the environment).
//! - `apigw`: a local server that behaves like an AWS API Gateway endpoint (see `apigw.rs`).
//! - `identity`: local Entra, managed identity, GitHub OIDC and STS-front servers (HTTPS with a
//!   throwaway CA) for the federated identity tests.
//! - `run`: running the real binary hermetically and reading its output.
//! - `manifest`: validating a run's manifest against `docs/manifest.schema.json`.
//!
//! Each integration test file includes this with `mod support;` and uses what it needs.
#![allow(dead_code)]

pub mod apigw;
pub mod azurite;
pub mod identity;
pub mod manifest;
pub mod run;
