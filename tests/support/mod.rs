//! Shared test support: the real components the integration tests run against.
//! - `azurite`: the Azurite emulator started by `scripts/test.sh` (address in the environment).
//! - `apigw`: a local server that behaves like an AWS API Gateway endpoint (see `apigw.rs`).
//! - `exports`: its export side: object references, asynchronous exports, an S3 front over
//!   moto whose presigned URLs expire (see `EXPORTS.md`).
//! - `oauth_server`: a local OAuth2 provider (Cognito-like and Okta-like token endpoints, JWKS;
//!   see `OAUTH.md`); `apigw_jwt`: the API emulator's JWT authorizer trusting it.
//! - `identity`: local Entra, managed identity, GitHub OIDC and STS-front servers (HTTPS with a
//!   throwaway CA) for the federated identity tests.
//! - `ci_oidc`: GitLab CI ID tokens and the Azure DevOps OIDC token endpoint.
//! - `notebook/`: Python stand-ins for Synapse's `mssparkutils` and Fabric's `notebookutils`.
//! - `run`: running the real binary hermetically and reading its output.
//! - `recipe`: running `examples/` and README blocks as written (gatelake on `PATH`).
//! - `ci_bin/`, `release_bin/`: stand-in `cargo`, `pip`, `pipx` and `curl` that install the
//!   binary under test where the real installers put gatelake (see each script's header).
//! - `manifest`: validating a run's manifest against `docs/manifest.schema.json`.
//!
//! Each integration test file includes this with `mod support;` and uses what it needs.
#![allow(dead_code)]

pub mod apigw;
pub mod apigw_jwt;
pub mod azurite;
pub mod ci_oidc;
pub mod exports;
pub mod identity;
pub mod manifest;
pub mod oauth_server;
pub mod recipe;
pub mod run;
pub mod s3_bucket;
