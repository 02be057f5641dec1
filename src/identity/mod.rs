//! Who the tool is, on each cloud it talks to.
//! - [`aws`]: AWS credentials for SigV4 (the standard AWS chain today; the federated
//!   web-identity exchange plugs in behind the same [`aws::AwsCredentials`] seam).
//! - [`sigv4`]: signing one API Gateway (`execute-api`) request with those credentials.
//!
//! Azure storage credentials live with the Azure sink (`sink::azure::auth`).

pub mod aws;
pub mod sigv4;
