//! Shared test support: the real components the integration tests run against.
//! - `azurite`: the Azurite emulator started by `scripts/test.sh` (address in the environment).
//! - `apigw`: a local server that behaves like an AWS API Gateway endpoint (see `apigw.rs`).
//!
//! Each integration test file includes this with `mod support;` and uses what it needs.
#![allow(dead_code)]

pub mod apigw;
pub mod azurite;
pub mod identity;
