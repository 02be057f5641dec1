#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::clock::FakeClock;
use axum::extract::State;
use axum::http::HeaderMap;
use base64::Engine as _;
use std::sync::Mutex;

/// What the test endpoint saw and answers.
#[derive(Default)]
struct Seen {
    forms: Vec<String>,
    authorizations: Vec<Option<String>>,
    /// Status and body to answer; a token numbered by request otherwise.
    refuse: Option<(u16, String)>,
}

async fn token_endpoint(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    let mut s = seen.lock().unwrap();
    s.forms.push(body);
    s.authorizations.push(
        headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string()),
    );
    let n = s.forms.len();
    let (status, body) = match &s.refuse {
        Some(r) => r.clone(),
        None => (
            200,
            format!(
                r#"{{"access_token":"tok-{n}","token_type":"Bearer","expires_in":100,"scope":"api/read"}}"#
            ),
        ),
    };
    axum::response::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body))
        .unwrap()
}

async fn serve(seen: Arc<Mutex<Seen>>) -> Url {
    let app = axum::Router::new()
        .route("/oauth2/token", axum::routing::post(token_endpoint))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Url::parse(&format!("http://{addr}/oauth2/token")).unwrap()
}

fn config(url: Url, auth: ClientAuth) -> OAuth2Config {
    OAuth2Config {
        token_url: url,
        client_id: "app client".into(),
        scopes: vec!["api/read".into()],
        audience: None,
        client_auth: auth,
        grant: Grant::ClientCredentials,
    }
}

fn secret(s: &str) -> SecretSource {
    SecretSource::Value(Secret::new(s))
}

#[tokio::test]
async fn tokens_are_cached_renewed_before_expiry_and_dropped_when_the_api_refuses_them() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let url = serve(seen.clone()).await;
    let clock = Arc::new(FakeClock::at(
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    ));
    let p = OAuth2Provider::new(
        config(url, ClientAuth::SecretBasic(secret("s3cr:t"))),
        reqwest::Client::new(),
        None,
    )
    .unwrap()
    .with_clock(clock.clone());
    assert_eq!(p.token().await.unwrap().access_token.expose(), "tok-1");
    clock.advance(Duration::from_secs(50));
    assert_eq!(p.token().await.unwrap().access_token.expose(), "tok-1");
    // 100 s lifetime: renewed 20 s before it ends.
    clock.advance(Duration::from_secs(35));
    assert_eq!(p.token().await.unwrap().access_token.expose(), "tok-2");
    let mut refused = reqwest::header::HeaderMap::new();
    refused.insert(
        "www-authenticate",
        r#"Bearer scope="" error="invalid_token" error_description="the token has expired""#
            .parse()
            .unwrap(),
    );
    p.note_refusal(&reqwest::header::HeaderMap::new());
    assert!(
        !p.take_refused(),
        "a 401 without invalid_token keeps the token"
    );
    // Two requests in flight refused at once: each is retried once.
    p.note_refusal(&refused);
    p.note_refusal(&refused);
    assert!(p.take_refused());
    assert!(p.take_refused());
    assert!(!p.take_refused(), "each refusal is taken once");
    assert_eq!(p.token().await.unwrap().access_token.expose(), "tok-3");
    let s = seen.lock().unwrap();
    assert_eq!(s.forms[0], "grant_type=client_credentials&scope=api%2Fread");
    // Basic auth with both parts form-encoded (RFC 6749 §2.3.1).
    let basic = base64::engine::general_purpose::STANDARD.encode("app+client:s3cr%3At");
    assert_eq!(
        s.authorizations[0].as_deref(),
        Some(format!("Basic {basic}").as_str())
    );
}

#[tokio::test]
async fn refusals_name_the_providers_code_and_the_fix() {
    let seen = Arc::new(Mutex::new(Seen {
        refuse: Some((400, r#"{"error":"invalid_client"}"#.into())),
        ..Default::default()
    }));
    let url = serve(seen.clone()).await;
    let p = OAuth2Provider::new(
        config(
            url.clone(),
            ClientAuth::SecretPost(secret("wrong-secret-value")),
        ),
        reqwest::Client::new(),
        None,
    )
    .unwrap();
    let err = p.token().await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_client"));
    let text = err.to_string();
    assert!(text.contains("cognito token endpoint"), "{text}");
    assert!(text.contains("GATELAKE_CLIENT_SECRET"), "{text}");
    assert!(!text.contains("wrong-secret-value"), "{text}");
    assert!(seen.lock().unwrap().forms[0].contains("client_secret=wrong-secret-value"));
    seen.lock().unwrap().refuse = Some((
        400,
        r#"{"error":"invalid_scope","error_description":"scope api/write is not allowed"}"#.into(),
    ));
    let text = p.token().await.unwrap_err().to_string();
    assert!(
        text.contains("(400 invalid_scope): scope api/write is not allowed"),
        "{text}"
    );
    assert!(text.contains("Allowed custom scopes"), "{text}");
}

#[test]
fn token_urls_must_be_https_off_loopback() {
    let c = |u: &str| {
        OAuth2Provider::new(
            config(Url::parse(u).unwrap(), ClientAuth::None),
            reqwest::Client::new(),
            None,
        )
        .map(|_| ())
    };
    assert!(c("https://x.auth.eu-west-1.amazoncognito.com/oauth2/token").is_ok());
    assert!(c("http://127.0.0.1:9/oauth2/token").is_ok());
    let err = c("http://idp.example.com/oauth2/token")
        .unwrap_err()
        .to_string();
    assert!(err.contains("must be an https:// URL"), "{err}");
}

#[test]
fn private_key_jwt_assertions_carry_the_key_id_and_verify() {
    use aws_lc_rs::encoding::AsDer as _;
    use aws_lc_rs::signature::{self, KeyPair as _};
    let key = signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der: aws_lc_rs::encoding::Pkcs8V1Der = key.as_der().unwrap();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(der.as_ref())
    );
    let k = assertion::AssertionKey::from_pem(
        std::path::Path::new("k.pem"),
        pem.as_bytes(),
        Some("key-1".into()),
    )
    .unwrap();
    let jwt = k
        .assertion("client", "https://idp/oauth2/default/v1/token", 1000)
        .unwrap();
    let parts: Vec<&str> = jwt.expose().split('.').collect();
    let dec = |s: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .unwrap()
    };
    let header: serde_json::Value = serde_json::from_slice(&dec(parts[0])).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&dec(parts[1])).unwrap();
    assert_eq!(header["kid"], "key-1");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(claims["aud"], "https://idp/oauth2/default/v1/token");
    assert_eq!(claims["iss"], "client");
    assert_eq!(claims["sub"], "client");
    signature::UnparsedPublicKey::new(
        &signature::RSA_PKCS1_2048_8192_SHA256,
        key.public_key().as_ref(),
    )
    .verify(
        format!("{}.{}", parts[0], parts[1]).as_bytes(),
        &dec(parts[2]),
    )
    .unwrap();
    let bad = assertion::AssertionKey::from_pem(std::path::Path::new("k.pem"), b"nothing", None)
        .unwrap_err()
        .to_string();
    assert!(
        bad.contains("--client-key-file k.pem holds no unencrypted RSA private key"),
        "{bad}"
    );
}

#[test]
fn exchange_forms_and_token_types() {
    let c = OAuth2Config {
        audience: Some("api://orders".into()),
        grant: Grant::TokenExchange {
            subject: SubjectToken::File("t".into()),
            subject_token_type: exchange::token_type_urn("jwt"),
        },
        ..config(Url::parse("http://127.0.0.1/t").unwrap(), ClientAuth::None)
    };
    let form = exchange::form(&c, &Secret::new("subj"), exchange::JWT_TOKEN_TYPE);
    let get = |k: &str| form.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("grant_type"), Some(exchange::GRANT_TYPE));
    assert_eq!(get("subject_token"), Some("subj"));
    assert_eq!(get("audience"), Some("api://orders"));
    assert_eq!(
        get("requested_token_type"),
        Some(exchange::ACCESS_TOKEN_TYPE)
    );
    assert_eq!(
        exchange::token_type_urn("id_token"),
        "urn:ietf:params:oauth:token-type:id_token"
    );
    assert_eq!(exchange::token_type_urn("urn:x"), "urn:x");
}

#[test]
fn answers_without_a_token_or_of_another_type_are_refused() {
    let c = config(Url::parse("http://127.0.0.1/t").unwrap(), ClientAuth::None);
    let now = SystemTime::UNIX_EPOCH;
    let ok = parse_token(
        br#"{"access_token":"a","token_type":"bearer","expires_in":"60"}"#,
        &c,
        "u",
        now,
    )
    .unwrap();
    assert_eq!(ok.expires_at, Some(now + Duration::from_secs(60)));
    assert_eq!(ok.scopes, vec!["api/read".to_string()]);
    assert!(parse_token(br#"{"token_type":"Bearer"}"#, &c, "u", now).is_err());
    let mac = parse_token(br#"{"access_token":"a","token_type":"mac"}"#, &c, "u", now).unwrap_err();
    assert!(mac.to_string().contains("not Bearer"), "{mac}");
}
