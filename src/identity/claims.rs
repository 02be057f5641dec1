//! Reading the claims of a JWT (issuer, audience, subject, tenant, app, expiry) for reports,
//! error messages and expiry times. Its own file because every identity provider (Azure, AWS
//! web identity, CI OIDC) reads claims, and none of them should depend on another for it. It
//! must never verify, trust or do I/O: it only decodes.

use base64::Engine as _;
use time::OffsetDateTime;

/// The claims of a JWT that say whose token it is. Decoded without verifying the signature:
/// only for reports and error messages, never for a trust decision.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TokenClaims {
    pub iss: Option<String>,
    pub aud: Option<String>,
    pub sub: Option<String>,
    pub tid: Option<String>,
    pub oid: Option<String>,
    /// `appid` (v1 tokens) or `azp` (v2).
    pub app_id: Option<String>,
    pub exp: Option<i64>,
    pub nbf: Option<i64>,
}

impl TokenClaims {
    /// The claims of `token`, when it is a JWT.
    pub fn of(token: &str) -> Option<Self> {
        let payload = token.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let aud = match v.get("aud") {
            Some(serde_json::Value::String(a)) => Some(a.clone()),
            Some(serde_json::Value::Array(a)) => Some(
                a.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            _ => None,
        };
        Some(Self {
            iss: s("iss"),
            aud,
            sub: s("sub"),
            tid: s("tid"),
            oid: s("oid"),
            app_id: s("appid").or_else(|| s("azp")),
            exp: v.get("exp").and_then(|x| x.as_i64()),
            nbf: v.get("nbf").and_then(|x| x.as_i64()),
        })
    }

    /// `exp` as a time.
    pub fn expires_on(&self) -> Option<OffsetDateTime> {
        self.exp
            .and_then(|e| OffsetDateTime::from_unix_timestamp(e).ok())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// An unsigned JWT carrying `claims`; the signature is never looked at here.
    fn jwt(claims: serde_json::Value) -> String {
        let b = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.sig",
            b(br#"{"alg":"RS256","typ":"JWT"}"#),
            b(claims.to_string().as_bytes())
        )
    }

    #[test]
    fn claims_are_read_from_jwts() {
        let t = jwt(serde_json::json!({
            "iss": "https://sts.windows.net/t1/", "aud": "api://AzureADTokenExchange",
            "sub": "s", "tid": "t1", "oid": "o1", "azp": "a1", "exp": 2_000_000_000i64
        }));
        let c = TokenClaims::of(&t).unwrap();
        assert_eq!(c.aud.as_deref(), Some("api://AzureADTokenExchange"));
        assert_eq!(c.app_id.as_deref(), Some("a1"));
        assert_eq!(c.exp, Some(2_000_000_000));
        assert!(TokenClaims::of("not-a-jwt").is_none());
    }
}
