//! The API Gateway emulator's JWT authorizer (HTTP APIs; a Cognito or Okta issuer), as
//! `ApiAuthCheck::Jwt`: `Authorization: Bearer <jwt>` must be an RS256 token signed by a key
//! of the issuer's JWKS (fetched once from its OpenID discovery document, as API Gateway
//! does), from `issuer`, for one of `audience` (`aud`, or `client_id` when the token has no
//! `aud`, as Cognito access tokens do not), within `nbf`..`exp`, and — when the route names
//! authorization scopes — holding one of them (`scope` or `scp`).
//!
//! Refusals are API Gateway's: 401 `{"message":"Unauthorized"}` with
//! `www-authenticate: Bearer scope="" error="invalid_token" error_description="…"` for a token
//! that is missing, expired, badly signed or for another issuer or audience; 403
//! `{"message":"Forbidden"}` with `error="insufficient_scope"` for a token without a scope the
//! route requires. See `APIGW.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::oauth_server::{decode, now, verify_rs256};
use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

/// A JWT authorizer's configuration, with the issuer's keys.
#[derive(Clone, Debug)]
pub struct JwtAuthorizer {
    pub issuer: String,
    pub audience: Vec<String>,
    /// The route's authorization scopes: the token needs one of them (none: any token).
    pub scopes: Vec<String>,
    keys: Vec<Value>,
}

impl JwtAuthorizer {
    /// An authorizer trusting `issuer`, its keys read from `<issuer>/.well-known/openid-configuration`'s `jwks_uri`.
    pub async fn from_issuer(issuer: &str, audience: &[&str], scopes: &[&str]) -> Self {
        let fetch = |url: String| async move {
            let body = reqwest::get(&url)
                .await
                .unwrap_or_else(|e| panic!("GET {url}: {e}"))
                .bytes()
                .await
                .unwrap_or_else(|e| panic!("GET {url}: {e}"));
            serde_json::from_slice::<Value>(&body).unwrap_or_else(|e| panic!("GET {url}: {e}"))
        };
        let discovery = fetch(format!("{issuer}/.well-known/openid-configuration")).await;
        let jwks = fetch(
            discovery["jwks_uri"]
                .as_str()
                .expect("jwks_uri")
                .to_string(),
        )
        .await;
        JwtAuthorizer {
            issuer: issuer.to_string(),
            audience: audience.iter().map(|a| a.to_string()).collect(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            keys: jwks["keys"].as_array().cloned().unwrap_or_default(),
        }
    }

    /// `Ok` for an authorized request, else API Gateway's answer (boxed: it is large).
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Box<Response>> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_string());
        let Some(token) = token else {
            return Err(refusal(StatusCode::UNAUTHORIZED, None));
        };
        let invalid =
            |why: &str| refusal(StatusCode::UNAUTHORIZED, Some(("invalid_token", why, "")));
        let (head, claims) = decode(&token);
        if head["alg"] != "RS256" {
            return Err(invalid("signing method is invalid"));
        }
        let key = self
            .keys
            .iter()
            .find(|k| k["kid"] == head["kid"])
            .ok_or_else(|| invalid("the token's key id is not in the issuer's JWKS"))?;
        if !verify_rs256(&token, key) {
            return Err(invalid("crypto/rsa: verification error"));
        }
        if claims["iss"] != self.issuer.as_str() {
            return Err(invalid("the token has an invalid issuer"));
        }
        let now = now();
        if claims["exp"].as_i64().is_none_or(|e| e <= now) {
            return Err(invalid("the token has expired"));
        }
        if claims["nbf"].as_i64().is_some_and(|n| n > now) {
            return Err(invalid("the token is not valid yet"));
        }
        let audiences: Vec<String> = match (&claims["aud"], &claims["client_id"]) {
            (Value::String(a), _) => vec![a.clone()],
            (Value::Array(a), _) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            (_, Value::String(c)) => vec![c.clone()],
            _ => Vec::new(),
        };
        if !audiences.iter().any(|a| self.audience.contains(a)) {
            return Err(invalid("the token does not have a valid audience"));
        }
        if !self.scopes.is_empty() {
            let held: Vec<String> = match (&claims["scope"], &claims["scp"]) {
                (Value::String(s), _) => s.split_whitespace().map(str::to_string).collect(),
                (_, Value::Array(a)) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            };
            if !self.scopes.iter().any(|s| held.contains(s)) {
                let wanted = self.scopes.join(" ");
                return Err(refusal(
                    StatusCode::FORBIDDEN,
                    Some((
                        "insufficient_scope",
                        &format!("expected scopes: [{wanted}]"),
                        &wanted,
                    )),
                ));
            }
        }
        Ok(())
    }
}

/// API Gateway's 401/403 with its `WWW-Authenticate` (`error`, `description`, `scope`).
fn refusal(status: StatusCode, error: Option<(&str, &str, &str)>) -> Box<Response> {
    let message = if status == StatusCode::FORBIDDEN {
        "Forbidden"
    } else {
        "Unauthorized"
    };
    let mut b = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some((code, description, scope)) = error {
        b = b.header(
            header::WWW_AUTHENTICATE,
            format!(r#"Bearer scope="{scope}" error="{code}" error_description="{description}""#),
        );
    }
    Box::new(
        b.body(Body::from(json!({ "message": message }).to_string()))
            .unwrap(),
    )
}
