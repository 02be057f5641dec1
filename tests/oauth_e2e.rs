//! `--api-auth oauth2` end to end, with the real binary: tokens from the local OAuth2 provider
//! (`support/oauth_server.rs`: Cognito-like client credentials with HTTP Basic, Okta-like
//! `private_key_jwt` and RFC 8693 token exchange) sent to the API Gateway emulator behind its
//! JWT authorizer (`support/apigw_jwt.rs`: issuer, audience, scope, expiry and the RS256
//! signature against the provider's JWKS). A pull that outlives a 2-second token lifetime has
//! no refused request; a token the API refuses as expired is replaced once; the provider's
//! refusals reach the user with their error code and the fix; no secret or token is printed
//! or stored.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use std::path::Path;
use std::process::Output;
use std::time::Duration;
use support::apigw::{ApiAuthCheck, ApiConfig, ApiGateway};
use support::apigw_jwt::JwtAuthorizer;
use support::oauth_server::{
    client_key, Client, OAuthConfig, OAuthServer, TrustedIssuer, TOKEN_EXCHANGE,
};
use support::run::{gatelake, s, summary, text};

const SECRET: &str = "cognito-client-secret-4f1d9a";
const SCOPE: &str = "orders-api/read";

/// A cursor-paged API of `records` records, 5 a page, each page taking `latency`.
async fn api(authorizer: JwtAuthorizer, records: u64, latency: Duration) -> ApiGateway {
    ApiGateway::start(ApiConfig {
        records,
        page_size: 5,
        latency,
        auth: ApiAuthCheck::Jwt(authorizer),
        ..ApiConfig::default()
    })
    .await
}

fn pull_args(api: &ApiGateway, dest: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = s(&[
        "pull",
        "--url",
        &api.url("/prod/cursor"),
        "--paginate",
        "cursor",
        "--cursor-path",
        "next_cursor",
        "--records",
        "items",
        "--output",
        "json",
        "--progress",
        "plain",
        "--dest",
        dest.to_str().unwrap(),
    ]);
    a.extend(extra.iter().map(|x| x.to_string()));
    a
}

/// Everything the run printed and wrote under `dir`, as text.
fn everything(out: &Output, dir: &Path) -> String {
    let mut all = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                all.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    all
}

fn assert_no_secret(all: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(
            !all.contains(secret.as_str()),
            "a secret leaked: {}…",
            &secret[..8.min(secret.len())]
        );
    }
}

async fn cognito(lifetime: Duration, claimed: Option<u64>) -> (OAuthServer, JwtAuthorizer) {
    let idp = OAuthServer::start(OAuthConfig {
        clients: vec![Client::with_secret(
            "cognito-app",
            SECRET,
            &[SCOPE, "orders-api/write"],
        )],
        lifetime,
        claimed_expires_in: claimed,
        ..OAuthConfig::default()
    })
    .await;
    let authorizer =
        JwtAuthorizer::from_issuer(&idp.cognito_issuer(), &["cognito-app"], &[SCOPE]).await;
    (idp, authorizer)
}

fn cognito_flags(idp: &OAuthServer) -> Vec<String> {
    s(&[
        "--api-auth",
        "oauth2",
        "--token-url",
        &idp.cognito_token_url(),
        "--client-id",
        "cognito-app",
        "--scope",
        SCOPE,
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cognito_pull_outlives_two_second_tokens_without_a_refused_request() {
    let (idp, authorizer) = cognito(Duration::from_secs(2), None).await;
    let api = api(authorizer, 60, Duration::from_millis(300)).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("lake");
    let mut args = pull_args(&api, &dest, &[]);
    args.extend(cognito_flags(&idp));
    let started = std::time::Instant::now();
    let out = gatelake(args, vec![("GATELAKE_CLIENT_SECRET".into(), SECRET.into())]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        started.elapsed() > Duration::from_secs(3),
        "the pull must outlive a token"
    );
    let sum = summary(&out);
    assert_eq!(sum["rows"], 60, "{sum}");
    // Renewed ahead of expiry: several tokens, and the API never refused one.
    assert!(idp.issued() >= 2, "issued {}", idp.issued());
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("refused the OAuth2 access token"),
        "{stderr}"
    );
    assert_eq!(
        api.requests().len(),
        12,
        "one request a page, none refused and retried"
    );
    // Cognito's way: HTTP Basic, the secret never in the form.
    for r in idp.requests() {
        assert!(r
            .authorization
            .as_deref()
            .unwrap_or_default()
            .starts_with("Basic "));
        assert!(!r.form.contains_key("client_secret"));
        assert_eq!(r.form.get("scope").map(String::as_str), Some(SCOPE));
    }
    // The manifest names the OAuth client, never a token.
    let manifest = std::fs::read_dir(&dest)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .find_map(|e| std::fs::read_to_string(e.path().join("_manifest.json")).ok())
        .expect("a manifest");
    let manifest: Value = serde_json::from_str(&manifest).unwrap();
    let api_id = manifest["identities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["role"] == "api")
        .cloned()
        .unwrap();
    assert_eq!(api_id["kind"], "oauth2", "{api_id}");
    assert_eq!(api_id["name"], "cognito-app", "{api_id}");
    let mut secrets = idp.tokens();
    secrets.push(SECRET.into());
    assert_no_secret(&everything(&out, dir.path()), &secrets);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_the_api_refuses_as_expired_is_replaced_once_and_the_pull_goes_on() {
    // The provider says an hour; its tokens die after two seconds — up to three, as `exp` is
    // rounded up to a whole second. So the 8 pages take 500 ms each: the last requests come
    // after any first token has died (at 400 ms, one run in five or so never met a refusal).
    let (idp, authorizer) = cognito(Duration::from_secs(2), Some(3600)).await;
    let api = api(authorizer, 40, Duration::from_millis(500)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = pull_args(&api, &dir.path().join("lake"), &[]);
    args.extend(cognito_flags(&idp));
    let out = gatelake(args, vec![("GATELAKE_CLIENT_SECRET".into(), SECRET.into())]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(summary(&out)["rows"], 40);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("refused the OAuth2 access token (401 invalid_token)"),
        "{stderr}"
    );
    assert!(idp.issued() >= 2, "issued {}", idp.issued());
    // Each refused request was retried with a new token, once.
    let refused = api.requests().len() - 8;
    assert_eq!(refused, idp.issued() - 1, "one retry per new token");
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_refusals_name_the_error_code_and_the_fix() {
    let idp = OAuthServer::start(OAuthConfig {
        clients: vec![
            Client::with_secret("cognito-app", SECRET, &[SCOPE]),
            Client {
                grants: vec!["authorization_code".into()],
                ..Client::with_secret("web-app", SECRET, &[SCOPE])
            },
        ],
        ..OAuthConfig::default()
    })
    .await;
    let authorizer =
        JwtAuthorizer::from_issuer(&idp.cognito_issuer(), &["cognito-app"], &[SCOPE]).await;
    let api = api(authorizer, 10, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: Vec<String>, secret: &str| {
        let mut args = pull_args(&api, &dir.path().join("lake"), &[]);
        args.extend(extra);
        gatelake(args, vec![("GATELAKE_CLIENT_SECRET".into(), secret.into())])
    };
    let cases: [(Vec<String>, &str, &str, &str); 4] = [
        (
            cognito_flags(&idp),
            "not-the-secret",
            "invalid_client",
            "GATELAKE_CLIENT_SECRET",
        ),
        (
            [cognito_flags(&idp), s(&["--scope", "orders-api/admin"])].concat(),
            SECRET,
            "invalid_scope",
            "Allowed custom scopes",
        ),
        (
            s(&[
                "--api-auth",
                "oauth2",
                "--token-url",
                &idp.cognito_token_url(),
                "--client-id",
                "web-app",
            ]),
            SECRET,
            "unauthorized_client",
            "Client credentials",
        ),
        (
            [cognito_flags(&idp), s(&["--client-auth", "post"])].concat(),
            SECRET,
            "invalid_client",
            "--client-auth",
        ),
    ];
    for (flags, secret, code, fix) in cases {
        let out = run(flags, secret).await;
        assert_eq!(out.status.code(), Some(3), "{code}: {}", text(&out.stderr));
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(all.contains(code), "{code}: {all}");
        assert!(all.contains(fix), "{code}: {all}");
        assert!(!all.contains(secret), "{code}: the secret was printed");
        // Nothing written: the identity is proved first.
        assert!(
            !dir.path().join("lake").exists(),
            "{code}: the lake was touched"
        );
    }
    assert_eq!(
        api.requests().len(),
        0,
        "no page is asked for without a token"
    );
    // The API's own 403 for a token without the route's scope.
    let authorizer = JwtAuthorizer::from_issuer(
        &idp.cognito_issuer(),
        &["cognito-app"],
        &["orders-api/write"],
    )
    .await;
    let strict = ApiGateway::start(ApiConfig {
        auth: ApiAuthCheck::Jwt(authorizer),
        ..ApiConfig::default()
    })
    .await;
    let mut args = pull_args(&strict, &dir.path().join("lake"), &[]);
    args.extend(cognito_flags(&idp));
    let out = gatelake(args, vec![("GATELAKE_CLIENT_SECRET".into(), SECRET.into())]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("(403)") && stderr.contains("--scope"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn okta_private_key_jwt_pulls_and_auth_check_shows_the_token() {
    let key = client_key("gatelake-key-1");
    let idp = OAuthServer::start(OAuthConfig {
        clients: vec![Client {
            id: "0oa-service".into(),
            secret: None,
            public_key: Some(key.jwk.clone()),
            grants: vec!["client_credentials".into()],
            scopes: vec!["orders.read".into()],
        }],
        ..OAuthConfig::default()
    })
    .await;
    let authorizer =
        JwtAuthorizer::from_issuer(&idp.okta_issuer(), &["api://orders"], &["orders.read"]).await;
    let api = api(authorizer, 25, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("client-key.pem");
    std::fs::write(&key_file, &key.pem).unwrap();
    let flags = s(&[
        "--api-auth",
        "oauth2",
        "--token-url",
        &idp.okta_token_url(),
        "--client-id",
        "0oa-service",
        "--client-key-file",
        key_file.to_str().unwrap(),
        "--client-key-id",
        "gatelake-key-1",
        "--scope",
        "orders.read",
    ]);
    let mut args = pull_args(&api, &dir.path().join("lake"), &[]);
    args.extend(flags.clone());
    let out = gatelake(args, vec![]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(summary(&out)["rows"], 25);
    let r = &idp.requests()[0];
    assert_eq!(
        r.form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    assert!(r.authorization.is_none());

    let mut args = pull_args(&api, &dir.path().join("lake"), &[]);
    args[0] = "check".into();
    args.insert(0, "auth".into());
    args.extend(flags);
    let out = gatelake(args, vec![]).await;
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let check = summary(&out);
    let hop = check["hops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hop"] == "oauth")
        .cloned()
        .unwrap_or_else(|| panic!("no oauth hop: {check}"));
    let id = &hop["identity"];
    assert_eq!(id["provider"], "okta", "{hop}");
    assert_eq!(id["client_id"], "0oa-service");
    assert_eq!(id["client_auth"], "private_key_jwt");
    assert_eq!(id["grant"], "client_credentials");
    assert_eq!(id["scopes"][0], "orders.read");
    assert_eq!(id["audience"], "api://orders");
    assert_eq!(id["issuer"], idp.okta_issuer().as_str());
    assert!(
        id["expires_at"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{hop}"
    );
    let api_hop = check["hops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hop"] == "api")
        .unwrap();
    assert_eq!(api_hop["status"], "ok", "{check}");
    let mut secrets = idp.tokens();
    secrets.push(key.pem.lines().nth(1).unwrap().to_string());
    assert_no_secret(
        &format!("{}{}", text(&out.stdout), text(&out.stderr)),
        &secrets,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_exchange_needs_no_standing_secret() {
    let issuer = "https://token.actions.example/";
    let idp = OAuthServer::start(OAuthConfig {
        clients: vec![Client {
            id: "0oa-exchange".into(),
            secret: None,
            public_key: None,
            grants: vec![TOKEN_EXCHANGE.into()],
            scopes: vec!["orders.read".into()],
        }],
        trusted: vec![TrustedIssuer {
            issuer: issuer.into(),
            audience: "okta-exchange".into(),
        }],
        ..OAuthConfig::default()
    })
    .await;
    let authorizer =
        JwtAuthorizer::from_issuer(&idp.okta_issuer(), &["api://orders"], &["orders.read"]).await;
    let api = api(authorizer, 15, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let subject_file = dir.path().join("subject.jwt");
    let subject = |aud: &str| {
        support::identity::jwt(&serde_json::json!({
            "iss": issuer, "aud": aud, "sub": "repo:acme/orders:ref:refs/heads/main",
            "iat": support::identity::now(), "exp": support::identity::now() + 600,
        }))
    };
    std::fs::write(&subject_file, subject("okta-exchange")).unwrap();
    let flags = s(&[
        "--api-auth",
        "oauth2",
        "--token-url",
        &idp.okta_token_url(),
        "--client-id",
        "0oa-exchange",
        "--subject-token",
        "file",
        "--subject-token-file",
        subject_file.to_str().unwrap(),
        "--scope",
        "orders.read",
    ]);
    let mut args = pull_args(&api, &dir.path().join("lake"), &[]);
    args.extend(flags.clone());
    let out = gatelake(args, vec![]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(summary(&out)["rows"], 15);
    let r = &idp.requests()[0];
    assert_eq!(r.form["grant_type"], TOKEN_EXCHANGE);
    assert_eq!(
        r.form["subject_token_type"],
        "urn:ietf:params:oauth:token-type:jwt"
    );
    assert_eq!(r.form["client_id"], "0oa-exchange");
    assert!(!r.form.contains_key("client_secret"));
    // A subject token for another audience: the provider's invalid_grant, with the fix.
    std::fs::write(&subject_file, subject("someone-else")).unwrap();
    let mut args = pull_args(&api, &dir.path().join("lake2"), &[]);
    args.extend(flags);
    let out = gatelake(args, vec![]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        all.contains("invalid_grant") && all.contains("--subject-token-audience"),
        "{all}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth2_settings_are_checked_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("client-secret");
    std::fs::write(&secret_file, "s3cret-from-file\n").unwrap();
    let secret_file = secret_file.to_str().unwrap().to_string();
    let base = |extra: &[&str]| {
        let mut a = s(&[
            "pull",
            "--url",
            "http://127.0.0.1:9/prod/items",
            "--dest",
            dir.path().to_str().unwrap(),
        ]);
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let cases: [(Vec<String>, i32, &str); 4] = [
        (
            base(&["--api-auth", "oauth2", "--client-id", "x"]),
            2,
            "needs --token-url",
        ),
        (
            base(&[
                "--token-url",
                "http://127.0.0.1:9/oauth2/token",
                "--client-id",
                "x",
            ]),
            3,
            "needs the client's credential",
        ),
        (
            base(&[
                "--api-auth",
                "bearer",
                "--bearer-token-file",
                "/dev/null",
                "--token-url",
                "http://127.0.0.1:9/t",
            ]),
            2,
            "--token-url",
        ),
        (
            base(&[
                "--api-auth",
                "oauth2",
                "--token-url",
                "http://idp.example.com/oauth2/token",
                "--client-id",
                "x",
                "--client-secret-file",
                &secret_file,
            ]),
            3,
            "must be an https:// URL",
        ),
    ];
    // --show-settings: where each came from, the secret masked, the inferred client auth.
    let out = gatelake(
        base(&[
            "--token-url",
            "http://127.0.0.1:9/oauth2/token",
            "--client-id",
            "app",
            "--scope",
            "a/read a/write",
            "--show-settings",
        ]),
        vec![("GATELAKE_CLIENT_SECRET".into(), "s3cret-in-env".into())],
    )
    .await;
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{shown}{}", text(&out.stderr));
    for line in [
        "api-auth            oauth2  (inferred from --token-url)",
        "scope               a/read a/write  (flag --scope)",
        "client-secret       ***  (env GATELAKE_CLIENT_SECRET)",
        "client-auth         basic  (default)",
    ] {
        assert!(
            shown.lines().any(|l| l == line),
            "{line:?} not in:\n{shown}"
        );
    }
    assert!(!shown.contains("s3cret-in-env"));
    for (args, code, says) in cases {
        let out = gatelake(args.clone(), vec![]).await;
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(code), "{args:?}: {all}");
        assert!(all.contains(says), "{args:?}: {all}");
    }
}

/// The README's `--api-auth oauth2` block, run as written against the local provider and API
/// (the example hosts replaced, the secret placeholder filled in), with `gatelake` on `PATH`.
#[tokio::test(flavor = "multi_thread")]
async fn readme_oauth2_cognito() {
    let (idp, authorizer) = cognito(Duration::from_secs(3600), None).await;
    let api = api(authorizer, 30, Duration::ZERO).await;
    let readme = include_str!("../README.md");
    let marker = "<!-- readme-test: readme_oauth2_cognito -->";
    let after = &readme[readme.find(marker).expect("the README's oauth2 block") + marker.len()..];
    let body = after
        .trim_start()
        .strip_prefix("```sh\n")
        .expect("a sh block after the marker");
    let block = &body[..body.find("```").unwrap()];
    let mut script = block.to_string();
    for (from, to) in [
        (
            "GATELAKE_CLIENT_SECRET=…",
            format!("GATELAKE_CLIENT_SECRET={SECRET}"),
        ),
        (
            "https://abc123.execute-api.us-east-1.amazonaws.com/prod/orders",
            api.url("/prod/cursor"),
        ),
        (
            "https://orders-auth.auth.us-east-1.amazoncognito.com/oauth2/token",
            idp.cognito_token_url(),
        ),
        (
            "--client-id 4mq1example",
            "--client-id cognito-app".to_string(),
        ),
    ] {
        assert!(
            script.contains(from),
            "the README block no longer has {from:?}"
        );
        script = script.replace(from, &to);
    }
    assert!(!script.contains("amazonaws.com") && !script.contains("amazoncognito.com"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("block.sh"), &script).unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_gatelake"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let cwd = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        support::run::hermetic("bash")
            .current_dir(&cwd)
            .args(["-euo", "pipefail", "block.sh"])
            .env("PATH", path)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("oauth") && stdout.contains("client_id=cognito-app"),
        "{stdout}"
    );
    assert!(stdout.contains("provider=cognito"), "{stdout}");
    let runs: Vec<_> = std::fs::read_dir(dir.path().join("lake/orders"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("_SUCCESS").exists())
        .collect();
    assert_eq!(runs.len(), 1);
    let mut secrets = idp.tokens();
    secrets.push(SECRET.into());
    assert_no_secret(&format!("{stdout}{}", text(&out.stderr)), &secrets);
}

/// The subject token from the identities gatelake already has: the GitHub Actions OIDC token
/// (asked for the provider's audience), and an Entra token for `api://AzureADTokenExchange`
/// from the API hop's Azure identity (here a token handed in, as a notebook would).
#[tokio::test(flavor = "multi_thread")]
async fn token_exchange_takes_the_github_or_azure_token_gatelake_has() {
    use support::identity::{jwt, now, GithubOidc, GITHUB_ISSUER, GITHUB_SUB};
    let entra_issuer = "https://sts.windows.net/72f988bf-0000-0000-0000-000000000000/";
    let idp = OAuthServer::start(OAuthConfig {
        clients: vec![Client {
            id: "0oa-exchange".into(),
            secret: None,
            public_key: None,
            grants: vec![TOKEN_EXCHANGE.into()],
            scopes: vec!["orders.read".into()],
        }],
        trusted: vec![
            TrustedIssuer {
                issuer: GITHUB_ISSUER.into(),
                audience: "okta-exchange".into(),
            },
            TrustedIssuer {
                issuer: entra_issuer.into(),
                audience: "api://AzureADTokenExchange".into(),
            },
        ],
        ..OAuthConfig::default()
    })
    .await;
    let authorizer =
        JwtAuthorizer::from_issuer(&idp.okta_issuer(), &["api://orders"], &["orders.read"]).await;
    let api = api(authorizer, 10, Duration::ZERO).await;
    let github = GithubOidc::start().await;
    let dir = tempfile::tempdir().unwrap();
    let common = s(&[
        "--api-auth",
        "oauth2",
        "--token-url",
        &idp.okta_token_url(),
        "--client-id",
        "0oa-exchange",
        "--scope",
        "orders.read",
    ]);

    let mut args = pull_args(&api, &dir.path().join("gh"), &[]);
    args.extend(common.clone());
    args.extend(s(&[
        "--subject-token",
        "github",
        "--subject-token-audience",
        "okta-exchange",
    ]));
    let env = vec![
        (
            "ACTIONS_ID_TOKEN_REQUEST_URL".to_string(),
            github.request_url(),
        ),
        (
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN".to_string(),
            github.request_token.clone(),
        ),
    ];
    let out = gatelake(args, env).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(summary(&out)["rows"], 10);
    let first = &idp.requests()[0];
    assert_eq!(first.form["subject_token"], github.issued()[0]);
    assert_eq!(decode_sub(&github.issued()[0]), GITHUB_SUB);

    let entra = jwt(&serde_json::json!({
        "iss": entra_issuer, "aud": "api://AzureADTokenExchange",
        "sub": "5d1c-object-id", "oid": "5d1c-object-id", "tid": "72f988bf-0000-0000-0000-000000000000",
        "iat": now(), "nbf": now() - 5, "exp": now() + 600,
    }));
    let mut args = pull_args(&api, &dir.path().join("az"), &[]);
    args.extend(common);
    args.extend(s(&["--subject-token", "azure", "--azure-auth", "token"]));
    let out = gatelake(args, vec![("GATELAKE_AZURE_TOKEN".into(), entra.clone())]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(summary(&out)["rows"], 10);
    let last = idp.requests().last().cloned().unwrap();
    assert_eq!(last.form["subject_token"], entra);
    assert!(last.error.is_none());
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_no_secret(&all, &[entra]);
}

fn decode_sub(token: &str) -> String {
    support::identity::claims(token)["sub"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
