//! A local OAuth2 provider for the `--api-auth oauth2` tests: a Cognito-like token endpoint and
//! an Okta-like authorization server on one loopback server, issuing RS256-signed access
//! tokens whose keys it publishes (JWKS), so the API Gateway emulator's JWT authorizer
//! (`apigw_jwt.rs`) checks them the way API Gateway does. See `OAUTH.md` beside this file.
//!
//! Each test starts its own server on `127.0.0.1:0` with its own signing key; it stops when
//! the handle is dropped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_lc_rs::signature::{self, KeyPair as _, RsaKeyPair};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The Cognito user pool id the Cognito-like issuer is named after.
pub const POOL_ID: &str = "us-east-1_GateLake1";
/// The Okta-like authorization server's id (`/oauth2/<server>/v1/token`).
pub const OKTA_SERVER: &str = "aus-orders";
/// The grant type of an RFC 8693 token exchange.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64url(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .unwrap_or_default()
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

/// An RSA public key as a JWK (`kty` RSA, `n`, `e`, `kid`).
pub fn jwk(kid: &str, key: &RsaKeyPair) -> Value {
    let (n, e) = der_modulus_exponent(key.public_key().as_ref());
    json!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid, "n": b64url(&n), "e": b64url(&e)})
}

/// `n` and `e` of a DER PKCS#1 `RSAPublicKey` (`SEQUENCE { INTEGER n, INTEGER e }`), big-endian
/// without leading zeros.
fn der_modulus_exponent(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    fn read(der: &[u8], at: usize) -> (u8, usize, usize) {
        let tag = der[at];
        let first = der[at + 1] as usize;
        if first < 0x80 {
            (tag, at + 2, first)
        } else {
            let n = first & 0x7f;
            let len = der[at + 2..at + 2 + n]
                .iter()
                .fold(0usize, |a, b| (a << 8) | *b as usize);
            (tag, at + 2 + n, len)
        }
    }
    let (tag, body, _) = read(der, 0);
    assert_eq!(tag, 0x30, "an RSAPublicKey SEQUENCE");
    let (_, n_at, n_len) = read(der, body);
    let (_, e_at, e_len) = read(der, n_at + n_len);
    let strip = |b: &[u8]| {
        b.iter()
            .skip_while(|x| **x == 0)
            .copied()
            .collect::<Vec<_>>()
    };
    (
        strip(&der[n_at..n_at + n_len]),
        strip(&der[e_at..e_at + e_len]),
    )
}

/// Whether `jwt`'s RS256 signature verifies with the JWK `key`.
pub fn verify_rs256(jwt: &str, key: &Value) -> bool {
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return false;
    }
    let n = unb64url(key["n"].as_str().unwrap_or_default());
    let e = unb64url(key["e"].as_str().unwrap_or_default());
    signature::RsaPublicKeyComponents {
        n: &n[..],
        e: &e[..],
    }
    .verify(
        &signature::RSA_PKCS1_2048_8192_SHA256,
        format!("{}.{}", parts[0], parts[1]).as_bytes(),
        &unb64url(parts[2]),
    )
    .is_ok()
}

/// The decoded header and claims of a JWT (`Null` when it is not one).
pub fn decode(jwt: &str) -> (Value, Value) {
    let mut parts = jwt.split('.');
    let mut next = || {
        parts
            .next()
            .and_then(|p| serde_json::from_slice(&unb64url(p)).ok())
            .unwrap_or(Value::Null)
    };
    let header = next();
    (header, next())
}

/// `header.claims` signed RS256 with `key`.
pub fn sign(key: &RsaKeyPair, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let mut sig = vec![0; key.public_modulus_len()];
    key.sign(
        &signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{input}.{}", b64url(&sig))
}

/// A client's key pair for `private_key_jwt`: the PEM file gatelake reads, and the JWK the
/// provider has registered for the client.
pub struct ClientKey {
    pub pem: String,
    pub jwk: Value,
}

/// A fresh 2048-bit RSA key (PKCS#8 PEM) with its JWK under `kid`.
pub fn client_key(kid: &str) -> ClientKey {
    use aws_lc_rs::encoding::AsDer as _;
    let key = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der: aws_lc_rs::encoding::Pkcs8V1Der = key.as_der().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    ClientKey {
        pem,
        jwk: jwk(kid, &key),
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// An app client registered with the provider.
#[derive(Clone, Debug)]
pub struct Client {
    pub id: String,
    /// The client secret (`client_secret_basic` / `client_secret_post`).
    pub secret: Option<String>,
    /// The public key registered for `private_key_jwt` (Okta: the app's JWKS).
    pub public_key: Option<Value>,
    /// Grants it may use: `client_credentials`, [`TOKEN_EXCHANGE`].
    pub grants: Vec<String>,
    /// Scopes it may be granted (all of them when it asks for none, as Cognito does).
    pub scopes: Vec<String>,
}

impl Client {
    /// A client with a secret, allowed the client credentials grant and `scopes`.
    pub fn with_secret(id: &str, secret: &str, scopes: &[&str]) -> Self {
        Client {
            id: id.into(),
            secret: Some(secret.into()),
            public_key: None,
            grants: vec!["client_credentials".into()],
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// A federated issuer the Okta-like server accepts subject tokens from (token exchange):
/// the token's `iss` and `aud` must be these. Subject tokens are checked by claims only (the
/// test identity providers issue unsigned tokens; see `identity.rs`).
#[derive(Clone, Debug)]
pub struct TrustedIssuer {
    pub issuer: String,
    pub audience: String,
}

/// Everything a test can turn.
#[derive(Clone, Debug)]
pub struct OAuthConfig {
    pub clients: Vec<Client>,
    /// `expires_in` of issued tokens (and their `exp`). Default one hour.
    pub lifetime: Duration,
    /// The `aud` of the Okta-like server's tokens. Default `api://orders`.
    pub okta_audience: String,
    pub trusted: Vec<TrustedIssuer>,
    /// `expires_in` claimed in the answer when it should differ from `lifetime` (a provider
    /// whose tokens die before it says: the API refuses them as expired). Default none.
    pub claimed_expires_in: Option<u64>,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        OAuthConfig {
            clients: Vec::new(),
            lifetime: Duration::from_secs(3600),
            okta_audience: "api://orders".into(),
            trusted: Vec::new(),
            claimed_expires_in: None,
        }
    }
}

/// One token request as received, for assertions.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub path: String,
    pub form: HashMap<String, String>,
    pub authorization: Option<String>,
    /// The error code answered, or `None` for a token.
    pub error: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

struct Shared {
    config: OAuthConfig,
    base_url: String,
    key: RsaKeyPair,
    kid: String,
    requests: Mutex<Vec<TokenRequest>>,
    tokens: Mutex<Vec<String>>,
    seen_jti: Mutex<HashSet<String>>,
}

/// A running provider. Dropping it stops the server.
pub struct OAuthServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for OAuthServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl OAuthServer {
    pub async fn start(config: OAuthConfig) -> OAuthServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0 for the OAuth2 server");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            config,
            base_url: format!("http://{addr}"),
            key: RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap(),
            kid: format!("test-key-{}", addr.port()),
            requests: Mutex::new(Vec::new()),
            tokens: Mutex::new(Vec::new()),
            seen_jti: Mutex::new(HashSet::new()),
        });
        let app = Router::new()
            .route("/oauth2/token", post(cognito_token))
            .route(
                &format!("/{POOL_ID}/.well-known/openid-configuration"),
                get(cognito_discovery),
            )
            .route(&format!("/{POOL_ID}/.well-known/jwks.json"), get(jwks))
            .route("/oauth2/{server}/v1/token", post(okta_token))
            .route(
                "/oauth2/{server}/.well-known/openid-configuration",
                get(okta_discovery),
            )
            .route("/oauth2/{server}/v1/keys", get(jwks))
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        OAuthServer { addr, shared, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Cognito-like token endpoint (`/oauth2/token`).
    pub fn cognito_token_url(&self) -> String {
        format!("{}/oauth2/token", self.shared.base_url)
    }

    /// The issuer of the Cognito-like tokens (`cognito-idp.<region>.amazonaws.com/<pool>`'s
    /// stand-in), whose `/.well-known/jwks.json` holds the signing key.
    pub fn cognito_issuer(&self) -> String {
        format!("{}/{POOL_ID}", self.shared.base_url)
    }

    /// The Okta-like token endpoint (`/oauth2/<server>/v1/token`).
    pub fn okta_token_url(&self) -> String {
        format!("{}/v1/token", self.okta_issuer())
    }

    /// The issuer of the Okta-like tokens.
    pub fn okta_issuer(&self) -> String {
        format!("{}/oauth2/{OKTA_SERVER}", self.shared.base_url)
    }

    /// Every token request so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The access tokens issued so far (to prove none is printed or stored).
    pub fn tokens(&self) -> Vec<String> {
        self.shared.tokens.lock().unwrap().clone()
    }

    /// How many tokens were issued so far.
    pub fn issued(&self) -> usize {
        self.requests().iter().filter(|r| r.error.is_none()).count()
    }
}

/// A 200 JSON answer.
fn json_response(body: Value) -> JsonBody {
    JsonBody(body)
}

struct JsonBody(Value);

impl JsonBody {
    fn into_response(self) -> Response {
        (
            StatusCode::OK,
            [("content-type", "application/json")],
            self.0.to_string(),
        )
            .into_response()
    }
}

/// An error as the provider sends it.
fn error(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json;charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

fn form_of(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let dec = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((dec(id), dec(secret)))
}

impl Shared {
    fn record(
        &self,
        path: &str,
        form: &HashMap<String, String>,
        headers: &HeaderMap,
        error: Option<&str>,
    ) {
        self.requests.lock().unwrap().push(TokenRequest {
            path: path.into(),
            form: form.clone(),
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            error: error.map(str::to_string),
        });
    }

    /// `exp` of a token issued now: rounded up, so a token is never refused before the
    /// `expires_in` its answer announced has passed.
    fn expiry(&self) -> i64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        (now + self.config.lifetime).as_secs_f64().ceil() as i64
    }

    fn client(&self, id: &str) -> Option<&Client> {
        self.config.clients.iter().find(|c| c.id == id)
    }

    /// The scopes to grant: those asked for if all are allowed, all allowed if none asked.
    fn grant_scopes(&self, client: &Client, form: &HashMap<String, String>) -> Option<Vec<String>> {
        let asked: Vec<String> = form
            .get("scope")
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        if asked.is_empty() {
            return Some(client.scopes.clone());
        }
        asked
            .iter()
            .all(|s| client.scopes.contains(s))
            .then_some(asked)
    }

    fn token(&self, claims: Value, scopes: &[String]) -> Response {
        let header = json!({"alg": "RS256", "kid": self.kid, "typ": "JWT"});
        let token = sign(&self.key, &header, &claims);
        self.tokens.lock().unwrap().push(token.clone());
        let body = json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.config.claimed_expires_in.unwrap_or(self.config.lifetime.as_secs()),
            "scope": scopes.join(" "),
        });
        (
            StatusCode::OK,
            [("content-type", "application/json;charset=UTF-8")],
            body.to_string(),
        )
            .into_response()
    }
}

// --- Cognito ---------------------------------------------------------------------------------

/// Cognito's `/oauth2/token`: form body, the client authenticated by HTTP Basic (a secret in
/// the body is refused), client credentials only; errors are 400 `{"error": code}` with no
/// description, as Cognito sends them.
async fn cognito_token(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = form_of(&body);
    let fail = |code: &str| {
        s.record("/oauth2/token", &form, &headers, Some(code));
        error(StatusCode::BAD_REQUEST, json!({ "error": code }))
    };
    let form_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !form_type.starts_with("application/x-www-form-urlencoded") {
        return fail("invalid_request");
    }
    let Some((id, secret)) = basic_credentials(&headers) else {
        return fail("invalid_client");
    };
    let Some(client) = s.client(&id) else {
        return fail("invalid_client");
    };
    if client.secret.as_deref() != Some(secret.as_str()) {
        return fail("invalid_client");
    }
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        Some(_) => return fail("unsupported_grant_type"),
        None => return fail("invalid_request"),
    }
    if !client.grants.iter().any(|g| g == "client_credentials") {
        return fail("unauthorized_client");
    }
    let Some(scopes) = s.grant_scopes(client, &form) else {
        return fail("invalid_scope");
    };
    s.record("/oauth2/token", &form, &headers, None);
    let now = now();
    // Cognito's access tokens carry client_id, no aud.
    let claims = json!({
        "sub": client.id,
        "client_id": client.id,
        "token_use": "access",
        "scope": scopes.join(" "),
        "iss": format!("{}/{POOL_ID}", s.base_url),
        "iat": now,
        "auth_time": now,
        "exp": s.expiry(),
        "version": 2,
        "jti": b64url(&rand::random::<[u8; 12]>()),
    });
    s.token(claims, &scopes)
}

async fn cognito_discovery(State(s): State<Arc<Shared>>) -> Response {
    let issuer = format!("{}/{POOL_ID}", s.base_url);
    json_response(json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "token_endpoint": format!("{}/oauth2/token", s.base_url),
    }))
    .into_response()
}

async fn jwks(State(s): State<Arc<Shared>>) -> Response {
    json_response(json!({ "keys": [jwk(&s.kid, &s.key)] })).into_response()
}

// --- Okta ------------------------------------------------------------------------------------

async fn okta_discovery(State(s): State<Arc<Shared>>, Path(server): Path<String>) -> Response {
    let issuer = format!("{}/oauth2/{server}", s.base_url);
    json_response(json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/v1/keys"),
        "token_endpoint": format!("{issuer}/v1/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "grant_types_supported": ["client_credentials", TOKEN_EXCHANGE],
    }))
    .into_response()
}

/// Okta's `/oauth2/<server>/v1/token`: client_secret_basic, client_secret_post or
/// private_key_jwt; client credentials or token exchange; errors with `error_description`.
async fn okta_token(
    State(s): State<Arc<Shared>>,
    Path(server): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/oauth2/{server}/v1/token");
    let form = form_of(&body);
    let fail = |status: StatusCode, code: &str, description: &str| {
        s.record(&path, &form, &headers, Some(code));
        error(
            status,
            json!({ "error": code, "error_description": description }),
        )
    };
    if server != OKTA_SERVER {
        return error(
            StatusCode::NOT_FOUND,
            json!({"errorCode": "E0000007", "errorSummary": "Not found: Resource not found"}),
        );
    }
    let invalid_client = || {
        fail(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed. Either the client or the client credentials are invalid.",
        )
    };
    // Client authentication: exactly one method.
    let endpoint = format!("{}{path}", s.base_url);
    let client = if let Some((id, secret)) = basic_credentials(&headers) {
        match s.client(&id) {
            Some(c) if c.secret.as_deref() == Some(secret.as_str()) => c,
            _ => return invalid_client(),
        }
    } else if let Some(assertion) = form.get("client_assertion") {
        if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
            return fail(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The client_assertion_type is invalid.",
            );
        }
        let (header, claims) = decode(assertion);
        let id = claims["sub"].as_str().unwrap_or_default().to_string();
        let Some(c) = s.client(&id) else {
            return invalid_client();
        };
        let Some(key) = &c.public_key else {
            return invalid_client();
        };
        let kid_ok = header["kid"].is_null() || header["kid"] == key["kid"];
        let fresh = s
            .seen_jti
            .lock()
            .unwrap()
            .insert(claims["jti"].as_str().unwrap_or_default().to_string());
        let now = now();
        let ok = header["alg"] == "RS256"
            && kid_ok
            && verify_rs256(assertion, key)
            && claims["iss"] == id.as_str()
            && claims["aud"] == endpoint.as_str()
            && claims["exp"]
                .as_i64()
                .is_some_and(|e| e > now && e <= now + 3600)
            && fresh;
        if !ok {
            return fail(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "The client_assertion signature is invalid, or its claims (iss, sub, aud, exp, jti) do not match.",
            );
        }
        if form.get("client_id").is_some_and(|cid| *cid != id) {
            return invalid_client();
        }
        c
    } else if let Some(id) = form.get("client_id") {
        match (s.client(id), form.get("client_secret")) {
            (Some(c), Some(secret)) if c.secret.as_deref() == Some(secret.as_str()) => c,
            (Some(c), None) if c.secret.is_none() && c.public_key.is_none() => c,
            _ => return invalid_client(),
        }
    } else {
        return invalid_client();
    };
    let grant = form.get("grant_type").cloned().unwrap_or_default();
    if grant != "client_credentials" && grant != TOKEN_EXCHANGE {
        return fail(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
        );
    }
    if !client.grants.contains(&grant) {
        return fail(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            &format!("The client is not authorized to use the provided grant type. Configured grant types: {:?}.", client.grants),
        );
    }
    let Some(scopes) = s.grant_scopes(client, &form) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "One or more scopes are not configured for the authorization server resource.",
        );
    };
    let now = now();
    let mut sub = client.id.clone();
    if grant == TOKEN_EXCHANGE {
        let types = [
            "urn:ietf:params:oauth:token-type:jwt",
            "urn:ietf:params:oauth:token-type:id_token",
            "urn:ietf:params:oauth:token-type:access_token",
        ];
        if !form
            .get("subject_token_type")
            .is_some_and(|t| types.contains(&t.as_str()))
        {
            return fail(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The subject_token_type is not supported.",
            );
        }
        let (_, subject) = decode(
            form.get("subject_token")
                .map(String::as_str)
                .unwrap_or_default(),
        );
        let aud_matches = |want: &str| match &subject["aud"] {
            Value::String(a) => a == want,
            Value::Array(a) => a.iter().any(|x| x == want),
            _ => false,
        };
        let trusted = s
            .config
            .trusted
            .iter()
            .any(|t| subject["iss"] == t.issuer.as_str() && aud_matches(&t.audience));
        let live = subject["exp"].as_i64().is_some_and(|e| e > now);
        if !trusted || !live {
            return fail(StatusCode::BAD_REQUEST, "invalid_grant", "The subject_token is invalid, expired, or not issued by a trusted issuer for this audience.");
        }
        sub = subject["sub"].as_str().unwrap_or_default().to_string();
    }
    s.record(&path, &form, &headers, None);
    let claims = json!({
        "ver": 1,
        "jti": b64url(&rand::random::<[u8; 12]>()),
        "iss": format!("{}/oauth2/{server}", s.base_url),
        "aud": s.config.okta_audience,
        "iat": now,
        "exp": s.expiry(),
        "cid": client.id,
        "sub": sub,
        "scp": scopes,
    });
    s.token(claims, &scopes)
}
