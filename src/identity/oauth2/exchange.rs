//! RFC 8693 token exchange: a token gatelake already has (an Entra token, the GitHub Actions
//! OIDC token, a projected token file) handed to the provider for its access token — no
//! standing secret, where the provider trusts the subject token's issuer.

use super::client_credentials::push_scope_and_audience;
use super::OAuth2Config;
use crate::secret::Secret;

/// The grant type of a token exchange.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The token type asked for.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The default `subject_token_type`: an OIDC token is a JWT.
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// `--subject-token-type`: a short name (`jwt`, `id_token`, `access_token`) or a URN.
pub fn token_type_urn(name: &str) -> String {
    match name {
        "jwt" | "id_token" | "access_token" => format!("urn:ietf:params:oauth:token-type:{name}"),
        other => other.to_string(),
    }
}

/// The form of an exchange of `subject` (before client authentication).
pub fn form(
    config: &OAuth2Config,
    subject: &Secret,
    subject_token_type: &str,
) -> Vec<(&'static str, String)> {
    let mut form = vec![
        ("grant_type", GRANT_TYPE.to_string()),
        ("subject_token", subject.expose().to_string()),
        ("subject_token_type", subject_token_type.to_string()),
        ("requested_token_type", ACCESS_TOKEN_TYPE.to_string()),
    ];
    push_scope_and_audience(config, &mut form);
    form
}
