//! Local stand-ins for the identity hops, each behaving as the real service does for the
//! parts gatelake uses (status codes, JSON/XML shapes, error bodies):
//!
//! - [`Entra`]: the Entra token endpoint (`POST /{tenant}/oauth2/v2.0/token`), over HTTPS with
//!   the test bed's throwaway CA (`GATELAKE_TEST_TLS_DIR`). Client credentials grant with a
//!   client secret or a federated assertion; the assertion must be a JWT whose `iss`, `sub` and
//!   `aud` match the app's federated credential and that has not expired (AADSTS70021 /
//!   AADSTS700024 otherwise, as Entra answers). Issued tokens are JWTs with `iss`
//!   `https://sts.windows.net/{tenant}/`, the scope's resource as `aud`, `tid`, `oid`, `appid`,
//!   `nbf` and `exp` — which is what Azurite's OAuth mode checks.
//! - the App Service managed identity endpoint (`GET /msi/token`, header `X-IDENTITY-HEADER`,
//!   answer `{access_token, expires_on, resource, token_type, client_id}`), on the same server;
//! - [`GithubOidc`]: the Actions OIDC token endpoint (`GET ?audience=…` with the request token
//!   as a bearer; answer `{"count":…, "value": jwt}`), plain HTTP on loopback;
//! - [`StsFront`]: a trust policy in front of moto's STS (moto issues credentials but checks no
//!   token): it checks the web identity token's `iss`, `aud` and `sub` like an IAM OIDC
//!   provider plus role trust policy, answers STS's XML errors (`InvalidIdentityToken`
//!   "Incorrect token audience", `AccessDenied`) when they do not match, can fail the first
//!   exchanges with `IDPCommunicationError`, and records the credentials moto issues so the API
//!   Gateway emulator can verify signatures made with them.
//!
//! Certificate client assertions (`x5t`/`x5t#S256` in the header) are verified for real: the
//! thumbprint must name the app's certificate ([`EntraConfig::certificate`], made per test by
//! [`make_client_certificate`]), the RS256/PS256 signature must verify with its public key,
//! `aud` must be this token endpoint, `iss` = `sub` = the client id, and `nbf`/`exp` span at
//! most ten minutes around now (AADSTS700027 / 700212 / 700023 / 700024 otherwise).
//!
//! Issued tokens are unsigned (`alg` RS256 with a dummy signature): none of the consumers here checks
//! signatures (Azurite does not; STS is behind [`StsFront`]).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::apigw::IssuedKeys;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// Seconds since the epoch.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// An unsigned JWT with these claims.
pub fn jwt(claims: &Value) -> String {
    let b = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.{}",
        b(br#"{"alg":"RS256","typ":"JWT","kid":"test"}"#),
        b(claims.to_string().as_bytes()),
        b(b"not-a-real-signature")
    )
}

/// The claims of a JWT.
pub fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

/// The test bed's TLS files (made by scripts/make_test_ca.py); fails loudly when missing.
pub fn tls_dir() -> PathBuf {
    let dir = std::env::var("GATELAKE_TEST_TLS_DIR").expect(
        "GATELAKE_TEST_TLS_DIR is not set: run the suite with `bash scripts/test.sh`, which makes the test CA",
    );
    PathBuf::from(dir)
}

/// The test CA, for `SSL_CERT_FILE` / `--ca-bundle`.
pub fn ca_file() -> PathBuf {
    tls_dir().join("ca.pem")
}

/// An axum listener that terminates TLS with the test bed's server certificate.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
            // A failed handshake (e.g. a client that does not trust the CA) is the client's
            // problem; keep serving.
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use rustls_pki_types::pem::PemObject;
    let dir = tls_dir();
    let certs: Vec<rustls_pki_types::CertificateDer<'static>> =
        rustls_pki_types::CertificateDer::pem_file_iter(dir.join("server.pem"))
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(dir.join("server-key.pem")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// A running server; stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `app` over HTTPS with the test bed's server certificate, on a free loopback port (for a
/// client that must, or must not, trust the test CA).
pub async fn serve_tls(app: Router) -> Server {
    serve(app, true).await
}

async fn serve(app: Router, tls: bool) -> Server {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let task = if tls {
        let listener = TlsListener {
            tcp,
            acceptor: tls_acceptor(),
        };
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        })
    } else {
        tokio::spawn(async move {
            let _ = axum::serve(tcp, app).await;
        })
    };
    Server { addr, task }
}

/// A plain-HTTP loopback server (for stand-ins of endpoints other files define).
pub async fn serve_plain(app: Router) -> Server {
    serve(app, false).await
}

// ---------------------------------------------------------------------------------------------
// Entra + App Service managed identity
// ---------------------------------------------------------------------------------------------

/// An app registration's federated credential: what an assertion must carry.
#[derive(Clone, Debug)]
pub struct FederatedCredential {
    pub issuer: String,
    pub subject: String,
    pub audience: String,
}

/// What the Entra stand-in knows.
#[derive(Clone, Debug)]
pub struct EntraConfig {
    pub tenant: String,
    pub client_id: String,
    pub object_id: String,
    pub client_secret: Option<String>,
    pub federated: Option<FederatedCredential>,
    /// Lifetime of issued tokens, seconds.
    pub token_lifetime: i64,
    /// The managed identity endpoint's expected `X-IDENTITY-HEADER`.
    pub identity_header: String,
    /// A certificate uploaded to the app registration (see [`ClientCertificateFiles`]).
    pub certificate: Option<ClientCertificateFiles>,
}

impl Default for EntraConfig {
    fn default() -> Self {
        Self {
            tenant: "72f988bf-0000-4000-8000-000000000001".into(),
            client_id: "11111111-2222-4333-8444-555555555555".into(),
            object_id: "99999999-8888-4777-8666-555555555555".into(),
            client_secret: None,
            federated: Some(FederatedCredential {
                issuer: "https://oidc.prod-aks.test/tenant/cluster/".into(),
                subject: "system:serviceaccount:data:gatelake".into(),
                audience: "api://AzureADTokenExchange".into(),
            }),
            token_lifetime: 3600,
            identity_header: "idh-7c1e0b".into(),
            certificate: None,
        }
    }
}

#[derive(Default)]
struct EntraState {
    config: Option<EntraConfig>,
    /// Every token issued (to check none leaks).
    issued: Mutex<Vec<String>>,
    /// Every assertion received (to prove the file is re-read).
    assertions: Mutex<Vec<String>>,
    token_requests: AtomicU32,
    /// `https://127.0.0.1:port`, known once the server listens (certificate assertions must
    /// name this token endpoint as `aud`).
    authority: Mutex<String>,
}

/// The Entra token endpoint and App Service MI endpoint, over HTTPS.
pub struct Entra {
    pub server: Server,
    state: Arc<EntraState>,
}

fn entra_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    (
        status,
        [("content-type", "application/json; charset=utf-8")],
        json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description} Trace ID: 0 Correlation ID: 0 Timestamp: 2026-01-01 00:00:00Z"),
            "error_codes": [code],
            "timestamp": "2026-01-01 00:00:00Z",
        })
        .to_string(),
    )
        .into_response()
}

impl Entra {
    pub async fn start(config: EntraConfig) -> Entra {
        let state = Arc::new(EntraState {
            config: Some(config),
            ..Default::default()
        });
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .route("/msi/token", get(msi))
            .with_state(state.clone());
        let server = serve(app, true).await;
        *state.authority.lock().unwrap() = format!("https://127.0.0.1:{}", server.addr.port());
        Entra { server, state }
    }

    /// The authority host (`AZURE_AUTHORITY_HOST`).
    pub fn authority(&self) -> String {
        format!("https://127.0.0.1:{}", self.server.addr.port())
    }

    /// The App Service `IDENTITY_ENDPOINT`.
    pub fn identity_endpoint(&self) -> String {
        format!("https://127.0.0.1:{}/msi/token", self.server.addr.port())
    }

    pub fn config(&self) -> EntraConfig {
        self.state.config.clone().unwrap()
    }

    pub fn issued(&self) -> Vec<String> {
        self.state.issued.lock().unwrap().clone()
    }

    pub fn assertions(&self) -> Vec<String> {
        self.state.assertions.lock().unwrap().clone()
    }

    pub fn token_requests(&self) -> u32 {
        self.state.token_requests.load(Ordering::SeqCst)
    }
}

fn issue(state: &EntraState, resource: &str, app_id: &str) -> (String, i64) {
    let c = state.config.as_ref().unwrap();
    let now = now();
    let token = jwt(&json!({
        "aud": resource,
        "iss": format!("https://sts.windows.net/{}/", c.tenant),
        "iat": now, "nbf": now - 5, "exp": now + c.token_lifetime,
        "tid": c.tenant, "oid": c.object_id, "appid": app_id, "sub": c.object_id,
        "ver": "1.0", "jti": format!("{}", rand::random::<u64>()),
    }));
    state.issued.lock().unwrap().push(token.clone());
    (token, now + c.token_lifetime)
}

async fn token(
    State(state): State<Arc<EntraState>>,
    axum::extract::Path(tenant): axum::extract::Path<String>,
    body: Bytes,
) -> Response {
    state.token_requests.fetch_add(1, Ordering::SeqCst);
    let c = state.config.clone().unwrap();
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    if tenant != c.tenant {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    if form.get("client_id") != Some(&c.client_id) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{}' was not found in the directory.",
                form.get("client_id").cloned().unwrap_or_default()
            ),
        );
    }
    let Some(scope) = form.get("scope") else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        );
    };
    let resource = scope.strip_suffix("/.default").unwrap_or(scope).to_string();
    if let Some(assertion) = form.get("client_assertion") {
        state.assertions.lock().unwrap().push(assertion.clone());
        if form.get("client_assertion_type").map(String::as_str)
            != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        {
            return entra_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50027,
                "Invalid client_assertion_type.",
            );
        }
        let header = jwt_header(assertion);
        if header.get("x5t").is_some() || header.get("x5t#S256").is_some() {
            let audience = format!(
                "{}/{}/oauth2/v2.0/token",
                state.authority.lock().unwrap(),
                c.tenant
            );
            if let Some(response) = check_certificate_assertion(&c, assertion, &audience) {
                return response;
            }
            let (access_token, _) = issue(&state, &resource, &c.client_id);
            return token_response(&c, access_token);
        }
        let a = claims(assertion);
        let Some(fed) = &c.federated else {
            return entra_error(
                StatusCode::BAD_REQUEST,
                "invalid_client",
                70021,
                "No matching federated identity record found for presented assertion.",
            );
        };
        let matches = a["iss"] == fed.issuer && a["sub"] == fed.subject && a["aud"] == fed.audience;
        if !matches {
            return entra_error(StatusCode::BAD_REQUEST, "invalid_client", 70021, &format!("No matching federated identity record found for presented assertion. Assertion Issuer: '{}'. Assertion Subject: '{}'. Assertion Audience: '{}'.", a["iss"].as_str().unwrap_or(""), a["sub"].as_str().unwrap_or(""), a["aud"].as_str().unwrap_or("")));
        }
        if a["exp"].as_i64().unwrap_or(0) <= now() {
            return entra_error(
                StatusCode::BAD_REQUEST,
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range.",
            );
        }
    } else if let Some(secret) = form.get("client_secret") {
        if Some(secret) != c.client_secret.as_ref() {
            return entra_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                "Invalid client secret provided.",
            );
        }
    } else {
        return entra_error(StatusCode::BAD_REQUEST, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
    }
    let (access_token, _) = issue(&state, &resource, &c.client_id);
    token_response(&c, access_token)
}

fn token_response(c: &EntraConfig, access_token: String) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json; charset=utf-8")],
        json!({"token_type": "Bearer", "expires_in": c.token_lifetime, "ext_expires_in": c.token_lifetime, "access_token": access_token}).to_string(),
    )
        .into_response()
}

/// The header of a JWT.
pub fn jwt_header(token: &str) -> Value {
    let part = token.split('.').next().unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

/// What Entra checks of a certificate client assertion: the thumbprint names a certificate
/// uploaded to the app, the signature verifies with that certificate's public key, `aud` is
/// this token endpoint, `iss` = `sub` = the client id, and it is within its (at most ten
/// minutes long) validity. `Some` is Entra's refusal.
fn check_certificate_assertion(
    c: &EntraConfig,
    assertion: &str,
    audience: &str,
) -> Option<Response> {
    use aws_lc_rs::{digest, signature};
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let refuse = |code: u32, message: &str| {
        Some(entra_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            code,
            message,
        ))
    };
    let Some(cert) = &c.certificate else {
        return refuse(
            700027,
            "The certificate with identifier used to sign the client assertion is not registered on application.",
        );
    };
    let header = jwt_header(assertion);
    let (alg, thumb_ok): (&dyn signature::VerificationAlgorithm, bool) =
        match header["alg"].as_str() {
            Some("RS256") => (
                &signature::RSA_PKCS1_2048_8192_SHA256,
                header["x5t"].as_str()
                    == Some(&b64(digest::digest(
                        &digest::SHA1_FOR_LEGACY_USE_ONLY,
                        &cert.der,
                    )
                    .as_ref())),
            ),
            Some("PS256") => (
                &signature::RSA_PSS_2048_8192_SHA256,
                header["x5t#S256"].as_str()
                    == Some(&b64(digest::digest(&digest::SHA256, &cert.der).as_ref())),
            ),
            _ => return refuse(5002738, "Invalid JWT token. 'alg' is not supported."),
        };
    if header["typ"] != "JWT" {
        return refuse(5002738, "Invalid JWT token. 'typ' must be JWT.");
    }
    if !thumb_ok {
        return refuse(
            700027,
            "The certificate with identifier used to sign the client assertion is not registered on application.",
        );
    }
    let parts: Vec<&str> = assertion.split('.').collect();
    let signature_bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts.get(2).copied().unwrap_or_default())
        .unwrap_or_default();
    let signed = format!("{}.{}", parts[0], parts.get(1).copied().unwrap_or_default());
    if signature::UnparsedPublicKey::new(alg, &cert.public_key)
        .verify(signed.as_bytes(), &signature_bytes)
        .is_err()
    {
        return refuse(700027, "Client assertion failed signature validation.");
    }
    let a = claims(assertion);
    if a["aud"] != audience {
        return refuse(
            700212,
            &format!(
                "The audience of the client assertion is not this token endpoint: '{}'.",
                a["aud"].as_str().unwrap_or("")
            ),
        );
    }
    if a["iss"] != c.client_id.as_str() || a["sub"] != c.client_id.as_str() {
        return refuse(
            700023,
            "Client assertion audience claim does not match Realm issuer: iss and sub must be the client id.",
        );
    }
    let (nbf, exp, now) = (
        a["nbf"].as_i64().unwrap_or(0),
        a["exp"].as_i64().unwrap_or(0),
        now(),
    );
    if exp <= now || nbf > now + 60 || exp - nbf > 600 || a["jti"].as_str().is_none() {
        return refuse(
            700024,
            "Client assertion is not within its valid time range.",
        );
    }
    None
}

/// A certificate for an app registration, made for the test with Python's `cryptography`
/// (from the test bed's venv, `GATELAKE_TEST_PYTHON`): a PEM file holding the certificate
/// and its unencrypted RSA key, as `AZURE_CLIENT_CERTIFICATE_PATH` wants it.
#[derive(Clone, Debug)]
pub struct ClientCertificateFiles {
    /// certificate + key, PEM.
    pub pem_path: PathBuf,
    /// The certificate, DER (Entra finds it by its thumbprint).
    pub der: Vec<u8>,
    /// The certificate's public key, DER `RSAPublicKey`.
    pub public_key: Vec<u8>,
    /// The private key's PEM text (to prove it never leaks).
    pub key_pem: String,
}

/// Make a self-signed RSA certificate in `dir`; `pkcs1` writes the key as `RSA PRIVATE KEY`
/// instead of PKCS#8.
pub fn make_client_certificate(dir: &std::path::Path, pkcs1: bool) -> ClientCertificateFiles {
    let python = std::env::var("GATELAKE_TEST_PYTHON").expect(
        "GATELAKE_TEST_PYTHON is not set: run the suite with `bash scripts/test.sh`, which makes the test bed's Python venv",
    );
    let script = r#"
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
out, fmt = sys.argv[1], sys.argv[2]
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gatelake test service principal")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2)).sign(key, hashes.SHA256()))
key_format = serialization.PrivateFormat.TraditionalOpenSSL if fmt == "pkcs1" else serialization.PrivateFormat.PKCS8
key_pem = key.private_bytes(serialization.Encoding.PEM, key_format, serialization.NoEncryption())
open(out + "/sp.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM) + key_pem)
open(out + "/sp-key.pem", "wb").write(key_pem)
open(out + "/sp.der", "wb").write(cert.public_bytes(serialization.Encoding.DER))
open(out + "/sp-pub.der", "wb").write(key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1))
"#;
    let status = std::process::Command::new(&python)
        .args(["-c", script])
        .arg(dir)
        .arg(if pkcs1 { "pkcs1" } else { "pkcs8" })
        .status()
        .expect("run the test bed's Python");
    assert!(status.success(), "making the test certificate failed");
    ClientCertificateFiles {
        pem_path: dir.join("sp.pem"),
        der: std::fs::read(dir.join("sp.der")).unwrap(),
        public_key: std::fs::read(dir.join("sp-pub.der")).unwrap(),
        key_pem: std::fs::read_to_string(dir.join("sp-key.pem")).unwrap(),
    }
}

async fn msi(
    State(state): State<Arc<EntraState>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let c = state.config.clone().unwrap();
    let given = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok());
    if given != Some(c.identity_header.as_str()) {
        return (StatusCode::UNAUTHORIZED, json!({"statusCode": 401, "message": "Unauthorized request. Please check the identity header."}).to_string()).into_response();
    }
    if q.get("api-version").map(String::as_str) != Some("2019-08-01") {
        return (
            StatusCode::BAD_REQUEST,
            json!({"statusCode": 400, "message": "api-version is required"}).to_string(),
        )
            .into_response();
    }
    if let Some(id) = q.get("client_id") {
        if id != &c.client_id {
            return (StatusCode::BAD_REQUEST, json!({"statusCode": 400, "message": "No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId."}).to_string()).into_response();
        }
    }
    let Some(resource) = q.get("resource") else {
        return (
            StatusCode::BAD_REQUEST,
            json!({"statusCode": 400, "message": "resource is required"}).to_string(),
        )
            .into_response();
    };
    let (access_token, exp) = issue(&state, resource, &c.client_id);
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        json!({"access_token": access_token, "expires_on": exp.to_string(), "resource": resource, "token_type": "Bearer", "client_id": c.client_id}).to_string(),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// GitHub Actions OIDC
// ---------------------------------------------------------------------------------------------

/// The Actions OIDC token endpoint.
pub struct GithubOidc {
    pub server: Server,
    pub request_token: String,
    issued: Arc<Mutex<Vec<String>>>,
}

pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
pub const GITHUB_SUB: &str = "repo:acme/data-jobs:ref:refs/heads/main";

impl GithubOidc {
    pub async fn start() -> GithubOidc {
        let request_token = format!("ghs_req_{}", rand::random::<u64>());
        let issued = Arc::new(Mutex::new(Vec::new()));
        let (rt, iss) = (request_token.clone(), issued.clone());
        let app = Router::new().route(
            "/_apis/token",
            get(
                move |Query(q): Query<HashMap<String, String>>, headers: HeaderMap| {
                    let rt = rt.clone();
                    let iss = iss.clone();
                    async move {
                        let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
                        if auth != Some(format!("Bearer {rt}").as_str()) {
                            return (
                                StatusCode::UNAUTHORIZED,
                                json!({"message": "Bad credentials"}).to_string(),
                            )
                                .into_response();
                        }
                        let aud = q
                            .get("audience")
                            .cloned()
                            .unwrap_or_else(|| "https://github.com/acme".into());
                        let now = now();
                        let t = jwt(&json!({
                            "iss": GITHUB_ISSUER, "aud": aud, "sub": GITHUB_SUB,
                            "repository": "acme/data-jobs", "ref": "refs/heads/main",
                            "iat": now, "nbf": now - 5, "exp": now + 300,
                        }));
                        iss.lock().unwrap().push(t.clone());
                        (
                            StatusCode::OK,
                            [("content-type", "application/json")],
                            json!({"count": 1, "value": t}).to_string(),
                        )
                            .into_response()
                    }
                },
            ),
        );
        GithubOidc {
            server: serve(app, false).await,
            request_token,
            issued,
        }
    }

    /// `ACTIONS_ID_TOKEN_REQUEST_URL` (it carries a query string of its own, as the real one).
    pub fn request_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/_apis/token?api-version=2.0",
            self.server.addr.port()
        )
    }

    pub fn issued(&self) -> Vec<String> {
        self.issued.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------------------------------------
// STS: a trust policy in front of moto
// ---------------------------------------------------------------------------------------------

/// An IAM OIDC provider plus role trust policy.
#[derive(Clone, Debug)]
pub struct TrustPolicy {
    pub issuer: String,
    pub audience: String,
    pub subject: String,
}

struct FrontState {
    moto: String,
    policy: TrustPolicy,
    issued: IssuedKeys,
    exchanges: AtomicU32,
    /// (RoleSessionName, User-Agent) of each successful exchange, in order.
    sessions: std::sync::Mutex<Vec<(String, String)>>,
    /// Answer this many exchanges with IDPCommunicationError first.
    idp_failures: AtomicU32,
    http: reqwest::Client,
}

pub struct StsFront {
    pub server: Server,
    state: Arc<FrontState>,
    tls: bool,
}

/// moto's address, from `scripts/test.sh`; fails loudly when missing.
pub fn moto_url() -> String {
    std::env::var("GATELAKE_TEST_MOTO").expect(
        "GATELAKE_TEST_MOTO is not set: run the suite with `bash scripts/test.sh`, which starts moto",
    )
}

fn sts_error(status: StatusCode, code: &str, message: &str) -> Response {
    let kind = if status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    (
        status,
        [("content-type", "text/xml")],
        format!("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"),
    )
        .into_response()
}

fn xml_field(xml: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].to_string())
}

impl StsFront {
    pub async fn start(policy: TrustPolicy, issued: IssuedKeys) -> StsFront {
        Self::start_with(policy, issued, false).await
    }

    /// The same over HTTPS with the test CA (the AWS SDK must be given `--ca-bundle`).
    pub async fn start_tls(policy: TrustPolicy, issued: IssuedKeys) -> StsFront {
        Self::start_with(policy, issued, true).await
    }

    async fn start_with(policy: TrustPolicy, issued: IssuedKeys, tls: bool) -> StsFront {
        let state = Arc::new(FrontState {
            moto: moto_url(),
            policy,
            issued,
            exchanges: AtomicU32::new(0),
            sessions: Default::default(),
            idp_failures: AtomicU32::new(0),
            http: reqwest::Client::new(),
        });
        let app = Router::new().fallback(sts_handle).with_state(state.clone());
        StsFront {
            server: serve(app, tls).await,
            state,
            tls,
        }
    }

    /// `AWS_ENDPOINT_URL_STS`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.server.addr.port())
    }

    /// Successful exchanges so far.
    pub fn exchanges(&self) -> u32 {
        self.state.exchanges.load(Ordering::SeqCst)
    }

    /// The role session name and `User-Agent` of each successful exchange, in order.
    pub fn sessions(&self) -> Vec<(String, String)> {
        self.state.sessions.lock().unwrap().clone()
    }

    pub fn fail_next_with_idp_error(&self, n: u32) {
        self.state.idp_failures.store(n, Ordering::SeqCst);
    }

    /// Every (secret key, session token) issued.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.state
            .issued
            .lock()
            .unwrap()
            .values()
            .flat_map(|(s, t)| [s.clone(), t.clone()])
            .collect()
    }
}

async fn sts_handle(State(state): State<Arc<FrontState>>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    if form.get("Action").map(String::as_str) == Some("AssumeRoleWithWebIdentity") {
        if state
            .idp_failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return sts_error(StatusCode::BAD_REQUEST, "IDPCommunicationError", "The request could not be fulfilled because the identity provider (IDP) that was asked to verify the incoming identity token could not be reached.");
        }
        let token = form.get("WebIdentityToken").cloned().unwrap_or_default();
        let c = claims(&token);
        let p = &state.policy;
        if c["iss"] != p.issuer.as_str() && c["iss"] != format!("{}/", p.issuer).as_str() {
            return sts_error(
                StatusCode::BAD_REQUEST,
                "InvalidIdentityToken",
                &format!(
                    "No OpenIDConnect provider found in your account for {}",
                    c["iss"].as_str().unwrap_or("")
                ),
            );
        }
        if c["aud"] != p.audience.as_str() {
            return sts_error(
                StatusCode::BAD_REQUEST,
                "InvalidIdentityToken",
                "Incorrect token audience",
            );
        }
        if c["exp"].as_i64().unwrap_or(0) <= now() {
            return sts_error(
                StatusCode::BAD_REQUEST,
                "ExpiredTokenException",
                "Token expired: current date/time must be before the expiration date/time.",
            );
        }
        if c["sub"] != p.subject.as_str() {
            return sts_error(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "Not authorized to perform sts:AssumeRoleWithWebIdentity",
            );
        }
    }
    // Forward as sent (moto routes signed calls such as GetCallerIdentity by their
    // credential scope); the signature covers `host`, which moto does not check.
    let mut forward = state
        .http
        .post(format!("{}{}", state.moto, parts.uri.path()))
        .body(body.to_vec());
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            forward = forward.header(name, value);
        }
    }
    let resp = forward.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    if status == 200 && form.get("Action").map(String::as_str) == Some("AssumeRoleWithWebIdentity")
    {
        let (Some(ak), Some(sk), Some(st)) = (
            xml_field(&text, "AccessKeyId"),
            xml_field(&text, "SecretAccessKey"),
            xml_field(&text, "SessionToken"),
        ) else {
            panic!("moto answered without credentials: {text}");
        };
        state.issued.lock().unwrap().insert(ak, (sk, st));
        state.exchanges.fetch_add(1, Ordering::SeqCst);
        let agent = parts
            .headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        state.sessions.lock().unwrap().push((
            form.get("RoleSessionName").cloned().unwrap_or_default(),
            agent.to_string(),
        ));
    }
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "text/xml")],
        text,
    )
        .into_response()
}
