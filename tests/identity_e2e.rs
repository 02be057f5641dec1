//! The trust chain end to end, with the real binary: a workload-identity token file → an
//! Entra token (local HTTPS token server) → STS AssumeRoleWithWebIdentity (moto behind a
//! trust-policy front) → SigV4-signed pull from the API Gateway emulator (which verifies the
//! signature and the session token) → Azurite over HTTPS with OAuth, written with a bearer
//! token. Then the GitHub OIDC path and a token handed in on stdin; `gatelake auth check`
//! passing, and failing usefully at each hop; and no secret anywhere in the output.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::apigw::{ApiAuthCheck, ApiConfig, ApiGateway, IssuedKeys};
use support::identity::{
    ca_file, jwt, now, Entra, EntraConfig, GithubOidc, StsFront, TrustPolicy, GITHUB_ISSUER,
    GITHUB_SUB,
};

const ROLE: &str = "arn:aws:iam::123456789012:role/gatelake-reader";

fn oauth_blob() -> String {
    std::env::var("GATELAKE_TEST_AZURITE_OAUTH_BLOB").expect(
        "GATELAKE_TEST_AZURITE_OAUTH_BLOB is not set: run the suite with `bash scripts/test.sh`, which starts Azurite with OAuth over HTTPS",
    )
}

/// Run the binary with a clean identity environment (plus `env`), optionally feeding stdin.
async fn gatelake(args: Vec<String>, env: Vec<(String, String)>, stdin: Option<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut cmd = support::run::command();
        cmd.args(&args)
            .envs(env)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run gatelake");
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        child.wait_with_output().expect("wait for gatelake")
    })
    .await
    .expect("join")
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json_out(out: &Output) -> Value {
    serde_json::from_str(text(&out.stdout).trim()).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

/// Everything one chain needs: Entra, STS front over moto, the API, a federated token file.
struct Chain {
    entra: Entra,
    sts: StsFront,
    api: ApiGateway,
    dir: tempfile::TempDir,
    federated: String,
}

fn federated_token(cfg: &EntraConfig, exp_in: i64) -> String {
    let f = cfg.federated.clone().unwrap();
    let n = now();
    jwt(
        &json!({"iss": f.issuer, "sub": f.subject, "aud": f.audience, "iat": n, "nbf": n - 5, "exp": n + exp_in}),
    )
}

async fn chain(policy_for_entra: bool, api_latency: Duration) -> Chain {
    let entra = Entra::start(EntraConfig::default()).await;
    let cfg = entra.config();
    let issued: IssuedKeys = Arc::new(Mutex::new(HashMap::new()));
    let policy = if policy_for_entra {
        TrustPolicy {
            issuer: format!("https://sts.windows.net/{}", cfg.tenant),
            audience: "api://AzureADTokenExchange".into(),
            subject: cfg.object_id.clone(),
        }
    } else {
        TrustPolicy {
            issuer: GITHUB_ISSUER.into(),
            audience: "sts.amazonaws.com".into(),
            subject: GITHUB_SUB.into(),
        }
    };
    let sts = StsFront::start(policy, issued.clone()).await;
    let api = ApiGateway::start(ApiConfig {
        records: 300,
        page_size: 20,
        latency: api_latency,
        auth: ApiAuthCheck::SigV4Issued {
            issued,
            region: "us-east-1".into(),
        },
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let federated = federated_token(&cfg, 3600);
    std::fs::write(dir.path().join("federated-token"), &federated).unwrap();
    Chain {
        entra,
        sts,
        api,
        dir,
        federated,
    }
}

impl Chain {
    fn wi_env(&self) -> Vec<(String, String)> {
        let cfg = self.entra.config();
        vec![
            ("AZURE_TENANT_ID".into(), cfg.tenant.clone()),
            ("AZURE_CLIENT_ID".into(), cfg.client_id.clone()),
            (
                "AZURE_FEDERATED_TOKEN_FILE".into(),
                self.dir
                    .path()
                    .join("federated-token")
                    .display()
                    .to_string(),
            ),
            ("AZURE_AUTHORITY_HOST".into(), self.entra.authority()),
            ("SSL_CERT_FILE".into(), ca_file().display().to_string()),
            ("AWS_ENDPOINT_URL_STS".into(), self.sts.url()),
        ]
    }

    fn pull_args(&self, container: &str, extra: &[&str]) -> Vec<String> {
        let mut a = s(&[
            "pull",
            "--url",
            &self.api.url("/prod/cursor"),
            "--paginate",
            "cursor",
            "--cursor-path",
            "next_cursor",
            "--records",
            "items",
            "--api-auth",
            "iam",
            "--region",
            "us-east-1",
            "--aws-role-arn",
            ROLE,
            "--dest",
            &format!("{}/{container}/orders", oauth_blob()),
            "--create-container",
            "--output",
            "json",
            "--progress",
            "none",
        ]);
        a.extend(s(extra));
        a
    }
}

fn container(name: &str) -> String {
    format!("{name}-{:08x}", rand::random::<u32>())
}

/// Read every object under `container` on the OAuth Azurite with the account key.
async fn stored_objects(container: &str) -> Vec<(String, Vec<u8>)> {
    use gatelake::sink::azure::{AzureLocation, AzureSinkBuilder, StorageCredential};
    use gatelake::sink::Sink;
    let loc = AzureLocation::parse(&format!("{}/{container}", oauth_blob())).unwrap();
    let http = gatelake::http::storage_client(&gatelake::http::HttpOptions {
        ca_bundles: vec![ca_file()],
        ..Default::default()
    })
    .unwrap();
    let sink = AzureSinkBuilder::new(loc)
        .with_credential(StorageCredential::SharedKey {
            account: gatelake::sink::azure::auth::DEV_ACCOUNT.into(),
            key: gatelake::secret::Secret::new(gatelake::sink::azure::auth::DEV_ACCOUNT_KEY),
        })
        .with_http_client(http)
        .build()
        .unwrap();
    let mut out = Vec::new();
    for o in sink.list("").await.unwrap() {
        let data = sink.get(&o.path).await.unwrap().unwrap().data.to_vec();
        out.push((o.path, data));
    }
    out
}

fn assert_no_secret(secrets: &[String], haystacks: &[(&str, &[u8])]) {
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        for (what, bytes) in haystacks {
            let hay = String::from_utf8_lossy(bytes);
            assert!(
                !hay.contains(secret.as_str()),
                "a secret ({}…) appears in {what}",
                &secret[..6]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workload_identity_to_sts_to_sigv4_to_azurite_oauth_refreshing_and_leaking_nothing() {
    let c = chain(true, Duration::from_millis(350)).await;
    let cont = container("wi");
    // A 6-second session over a ~5-second pull: credentials must be re-exchanged mid-pull.
    let out = gatelake(
        c.pull_args(&cont, &["--aws-session-duration", "4s", "-v"]),
        c.wi_env(),
        None,
    )
    .await;
    let stderr = text(&out.stderr);
    assert!(
        out.status.success(),
        "stderr: {stderr}\nstdout: {}",
        text(&out.stdout)
    );
    let summary = json_out(&out);
    assert_eq!(summary["rows"], 300, "{summary}");
    // A session this short works against the emulator, but real STS refuses it: say so.
    assert!(
        stderr.contains("warning: --aws-session-duration 4s is below STS's 15-minute minimum"),
        "{stderr}"
    );
    assert!(
        c.sts.exchanges() >= 2,
        "expected a re-exchange during the pull, saw {} exchange(s)",
        c.sts.exchanges()
    );
    // Every request carried a session token (the emulator verifies signature and token).
    let requests = c.api.requests();
    let keys: std::collections::HashSet<String> = requests
        .iter()
        .filter_map(|r| r.headers.get("authorization"))
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split("Credential=").nth(1))
        .filter_map(|v| v.split('/').next())
        .map(str::to_string)
        .collect();
    assert!(
        keys.len() >= 2,
        "requests were signed with {} key(s)",
        keys.len()
    );
    assert!(requests
        .iter()
        .all(|r| r.headers.contains_key("x-amz-security-token")));
    // The federated token file was read for each exchange with Entra.
    assert!(!c.entra.assertions().is_empty());

    let stored = stored_objects(&cont).await;
    assert!(
        stored.iter().any(|(p, _)| p.ends_with("_SUCCESS")),
        "{:?}",
        stored.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );

    // No secret in stdout, stderr or any stored object.
    let mut secrets = c.entra.issued();
    secrets.push(c.federated.clone());
    secrets.extend(c.sts.issued_secrets());
    let mut hay: Vec<(&str, &[u8])> = vec![("stdout", &out.stdout), ("stderr", &out.stderr)];
    for (p, d) in &stored {
        hay.push((p.as_str(), d.as_slice()));
    }
    assert_no_secret(&secrets, &hay);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn github_oidc_path_retries_idp_errors() {
    let c = chain(false, Duration::ZERO).await;
    let gh = GithubOidc::start().await;
    c.sts.fail_next_with_idp_error(1);
    let cont = container("gh");
    let mut env = vec![
        ("ACTIONS_ID_TOKEN_REQUEST_URL".to_string(), gh.request_url()),
        (
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN".to_string(),
            gh.request_token.clone(),
        ),
        ("AWS_ENDPOINT_URL_STS".to_string(), c.sts.url()),
        ("SSL_CERT_FILE".to_string(), ca_file().display().to_string()),
    ];
    // Storage with a managed identity (App Service style) this time.
    env.push(("IDENTITY_ENDPOINT".into(), c.entra.identity_endpoint()));
    env.push(("IDENTITY_HEADER".into(), c.entra.config().identity_header));
    let out = gatelake(c.pull_args(&cont, &["--web-identity", "github"]), env, None).await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(json_out(&out)["rows"], 300);
    assert_eq!(c.sts.exchanges(), 1);
    let mut secrets = gh.issued();
    secrets.push(gh.request_token.clone());
    secrets.extend(c.entra.issued());
    secrets.extend(c.sts.issued_secrets());
    assert_no_secret(
        &secrets,
        &[("stdout", &out.stdout), ("stderr", &out.stderr)],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_handed_in_on_stdin_writes_to_azurite_with_oauth() {
    let api = ApiGateway::start(ApiConfig {
        records: 50,
        auth: ApiAuthCheck::ApiKey("k-stdin-test-123".into()),
        ..Default::default()
    })
    .await;
    let cfg = EntraConfig::default();
    let n = now();
    let token = jwt(&json!({
        "aud": "https://storage.azure.com", "iss": format!("https://sts.windows.net/{}/", cfg.tenant),
        "tid": cfg.tenant, "oid": cfg.object_id, "nbf": n - 5, "iat": n, "exp": n + 3600,
    }));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "k-stdin-test-123").unwrap();
    let cont = container("stdin");
    let out = gatelake(
        s(&[
            "pull",
            "--url",
            &api.url("/prod/cursor"),
            "--records",
            "items",
            "--api-auth",
            "api-key",
            "--api-key-file",
            &dir.path().join("key").display().to_string(),
            "--azure-token-stdin",
            "--dest",
            &format!("{}/{cont}/x", oauth_blob()),
            "--create-container",
            "--output",
            "json",
            "--progress",
            "none",
            "-v",
        ]),
        vec![("SSL_CERT_FILE".into(), ca_file().display().to_string())],
        Some(format!("{token}\n")),
    )
    .await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(json_out(&out)["rows"], 50);
    let stored = stored_objects(&cont).await;
    let mut hay: Vec<(&str, &[u8])> = vec![("stdout", &out.stdout), ("stderr", &out.stderr)];
    for (p, d) in &stored {
        hay.push((p.as_str(), d.as_slice()));
    }
    assert_no_secret(&[token, "k-stdin-test-123".into()], &hay);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auth_check_passes_and_names_every_identity() {
    let c = chain(true, Duration::ZERO).await;
    let cont = container("check");
    let mut args = c.pull_args(&cont, &[]);
    args[0] = "check".into();
    args.insert(0, "auth".into());
    args.retain(|a| a != "--create-container");
    // The container must exist for the lake probe: create it with a pull first.
    let out = gatelake(
        c.pull_args(&cont, &["--max-pages", "1", "--max-pages-complete"]),
        c.wi_env(),
        None,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = gatelake(args, c.wi_env(), None).await;
    let v = json_out(&out);
    assert!(out.status.success(), "{v}\n{}", text(&out.stderr));
    let hops = v["hops"].as_array().unwrap();
    let hop = |name: &str| hops.iter().find(|h| h["hop"] == name).unwrap().clone();
    assert_eq!(hop("azure")["status"], "ok");
    assert_eq!(
        hop("azure")["identity"]["source"],
        "workload identity federation (AZURE_FEDERATED_TOKEN_FILE)"
    );
    let tokens = hop("azure")["identity"]["tokens"]
        .as_array()
        .unwrap()
        .clone();
    assert!(tokens
        .iter()
        .any(|t| t["audience"] == "api://AzureADTokenExchange"
            && t["tenant"] == c.entra.config().tenant));
    assert!(
        hop("aws")["identity"]["assumed_role_arn"]
            .as_str()
            .unwrap()
            .contains("gatelake-reader"),
        "{v}"
    );
    assert_eq!(hop("api")["status"], "ok");
    assert_eq!(hop("lake")["status"], "ok");
    let mut secrets = c.entra.issued();
    secrets.extend(c.sts.issued_secrets());
    assert_no_secret(
        &secrets,
        &[("stdout", &out.stdout), ("stderr", &out.stderr)],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auth_check_fails_usefully_at_each_hop() {
    let c = chain(true, Duration::ZERO).await;
    let check = |extra: &[&str], cont: &str| {
        let mut a = c.pull_args(cont, &[]);
        // A later --region replaces the first (clap refuses it twice).
        let mut rest = extra.iter();
        while let Some(flag) = rest.next() {
            let value = rest.next().unwrap();
            match a.iter().position(|x| x == flag) {
                Some(i) => a[i + 1] = value.to_string(),
                None => a.extend([flag.to_string(), value.to_string()]),
            }
        }
        a[0] = "check".into();
        a.insert(0, "auth".into());
        a.retain(|x| x != "--create-container");
        a
    };
    let hop_of = |v: &Value, name: &str| {
        v["hops"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["hop"] == name)
            .unwrap()
            .clone()
    };

    // Azure: an app id the tenant does not know.
    let mut env = c.wi_env();
    env.retain(|(k, _)| k != "AZURE_CLIENT_ID");
    env.push((
        "AZURE_CLIENT_ID".into(),
        "00000000-0000-4000-8000-00000000dead".into(),
    ));
    let out = gatelake(check(&[], "nope"), env, None).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    let v = json_out(&out);
    let az = hop_of(&v, "azure");
    assert_eq!(az["status"], "failed");
    assert!(
        az["error"].as_str().unwrap().contains("AZURE_CLIENT_ID"),
        "{az}"
    );
    assert_eq!(hop_of(&v, "aws")["status"], "skipped");

    // AWS: the token's audience is not the OIDC provider's.
    let out = gatelake(
        check(&["--web-identity-audience", "api://other"], "nope"),
        c.wi_env(),
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(3));
    let aws = hop_of(&json_out(&out), "aws");
    assert_eq!(aws["status"], "failed", "{aws}");
    let err = aws["error"].as_str().unwrap();
    assert!(
        err.contains("aud = api://other") && err.contains("OIDC provider"),
        "{err}"
    );
    assert!(aws["fix"].is_string());

    // API: the wrong signing region.
    let out = gatelake(
        check(
            &["--region", "eu-west-1", "--aws-sts-region", "us-east-1"],
            "nope",
        ),
        c.wi_env(),
        None,
    )
    .await;
    let v = json_out(&out);
    let api = hop_of(&v, "api");
    assert_eq!(api["status"], "failed", "{v}");
    assert!(api["error"].as_str().unwrap().contains("region"), "{api}");
    assert_eq!(out.status.code(), Some(3));

    // Lake: the container does not exist.
    let out = gatelake(check(&[], &container("missing")), c.wi_env(), None).await;
    let v = json_out(&out);
    let lake = hop_of(&v, "lake");
    assert_eq!(lake["status"], "failed", "{v}");
    assert!(lake["fix"].is_string());
    assert_eq!(out.status.code(), Some(5));
}

/// A service principal with a certificate: the binary signs a client assertion with the
/// key in `AZURE_CLIENT_CERTIFICATE_PATH`, the local Entra verifies it (thumbprint,
/// signature, audience, issuer/subject, lifetime) and issues tokens for storage (Azurite with
/// OAuth) and for the STS exchange (SigV4 pull). A certificate Entra does not know fails with
/// the fix; the key never shows up anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn service_principal_with_a_certificate_to_sts_and_azurite_oauth() {
    let certs = tempfile::tempdir().unwrap();
    let registered_dir = certs.path().join("registered");
    let other_dir = certs.path().join("other");
    std::fs::create_dir_all(&registered_dir).unwrap();
    std::fs::create_dir_all(&other_dir).unwrap();
    let registered = support::identity::make_client_certificate(&registered_dir, true);
    let other = support::identity::make_client_certificate(&other_dir, false);

    let entra = Entra::start(EntraConfig {
        federated: None,
        certificate: Some(registered.clone()),
        ..Default::default()
    })
    .await;
    let cfg = entra.config();
    let issued: IssuedKeys = Arc::new(Mutex::new(HashMap::new()));
    let sts = StsFront::start(
        TrustPolicy {
            issuer: format!("https://sts.windows.net/{}", cfg.tenant),
            audience: "api://AzureADTokenExchange".into(),
            subject: cfg.object_id.clone(),
        },
        issued.clone(),
    )
    .await;
    let api = ApiGateway::start(ApiConfig {
        records: 120,
        page_size: 20,
        auth: ApiAuthCheck::SigV4Issued {
            issued,
            region: "us-east-1".into(),
        },
        ..Default::default()
    })
    .await;
    let env_for = |pem: &std::path::Path| {
        vec![
            ("AZURE_TENANT_ID".to_string(), cfg.tenant.clone()),
            ("AZURE_CLIENT_ID".to_string(), cfg.client_id.clone()),
            (
                "AZURE_CLIENT_CERTIFICATE_PATH".to_string(),
                pem.display().to_string(),
            ),
            ("AZURE_AUTHORITY_HOST".to_string(), entra.authority()),
            ("SSL_CERT_FILE".to_string(), ca_file().display().to_string()),
            ("AWS_ENDPOINT_URL_STS".to_string(), sts.url()),
        ]
    };
    let cont = container("cert");
    let args = |cont: &str| {
        s(&[
            "pull",
            "--url",
            &api.url("/prod/cursor"),
            "--paginate",
            "cursor",
            "--cursor-path",
            "next_cursor",
            "--records",
            "items",
            "--api-auth",
            "iam",
            "--region",
            "us-east-1",
            "--aws-role-arn",
            ROLE,
            "--dest",
            &format!("{}/{cont}/orders", oauth_blob()),
            "--create-container",
            "--output",
            "json",
            "--progress",
            "none",
            "-v",
        ])
    };
    let out = gatelake(args(&cont), env_for(&registered.pem_path), None).await;
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    assert_eq!(json_out(&out)["rows"], 120);
    assert!(
        stderr.contains("service principal (AZURE_CLIENT_CERTIFICATE_PATH)"),
        "the source is named: {stderr}"
    );
    assert_eq!(sts.exchanges(), 1);
    // Both tokens (storage and the exchange audience) came from signed assertions.
    let assertions = entra.assertions();
    assert!(assertions.len() >= 2, "{} assertion(s)", assertions.len());
    for a in &assertions {
        let h = support::identity::jwt_header(a);
        assert_eq!(h["alg"], "RS256", "{h}");
    }
    let stored = stored_objects(&cont).await;
    assert!(stored.iter().any(|(p, _)| p.ends_with("_SUCCESS")));
    let mut secrets = entra.issued();
    secrets.extend(assertions);
    secrets.extend(sts.issued_secrets());
    // Every line of the key's base64 body.
    secrets.extend(
        registered
            .key_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::to_string),
    );
    let mut hay: Vec<(&str, &[u8])> = vec![("stdout", &out.stdout), ("stderr", &out.stderr)];
    for (p, d) in &stored {
        hay.push((p.as_str(), d.as_slice()));
    }
    assert_no_secret(&secrets, &hay);

    // auth check names the certificate credential.
    let mut check = args(&cont);
    check[0] = "check".into();
    check.insert(0, "auth".into());
    check.retain(|a| a != "--create-container");
    let out = gatelake(check, env_for(&registered.pem_path), None).await;
    let v = json_out(&out);
    assert!(out.status.success(), "{v}\n{}", text(&out.stderr));
    let azure = v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hop"] == "azure")
        .unwrap()
        .clone();
    assert_eq!(
        azure["identity"]["source"],
        "service principal (AZURE_CLIENT_CERTIFICATE_PATH)"
    );

    // A certificate that is not uploaded to the app: refused, with the fix.
    let out = gatelake(args(&container("cert-bad")), env_for(&other.pem_path), None).await;
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("AADSTS700027") && stderr.contains("upload this certificate"),
        "{stderr}"
    );
}

/// `--bearer-from azure`: the API Gateway's JWT authorizer trusts Entra; the tool asks its
/// Azure identity (a service principal with a secret here) for a token whose audience is the
/// API's app id URI and sends it as the bearer. A token for another audience is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bearer_from_azure_passes_an_entra_jwt_authorizer() {
    let entra = Entra::start(EntraConfig {
        client_secret: Some("sp-secret-8c1f2e9a77".into()),
        ..Default::default()
    })
    .await;
    let cfg = entra.config();
    let api = ApiGateway::start(ApiConfig {
        records: 90,
        page_size: 20,
        auth: ApiAuthCheck::EntraJwt {
            issuer: format!("https://sts.windows.net/{}/", cfg.tenant),
            audience: "api://orders-api".into(),
        },
        ..Default::default()
    })
    .await;
    let lake = tempfile::tempdir().unwrap();
    let env = vec![
        ("AZURE_TENANT_ID".to_string(), cfg.tenant.clone()),
        ("AZURE_CLIENT_ID".to_string(), cfg.client_id.clone()),
        (
            "AZURE_CLIENT_SECRET".to_string(),
            "sp-secret-8c1f2e9a77".into(),
        ),
        ("AZURE_AUTHORITY_HOST".to_string(), entra.authority()),
        ("SSL_CERT_FILE".to_string(), ca_file().display().to_string()),
    ];
    let args = |audience: &str, dest: &str| {
        s(&[
            "pull",
            "--url",
            &api.url("/prod/cursor"),
            "--paginate",
            "cursor",
            "--cursor-path",
            "next_cursor",
            "--records",
            "items",
            "--api-auth",
            "bearer",
            "--bearer-from",
            "azure",
            "--bearer-audience",
            audience,
            "--dest",
            dest,
            "--output",
            "json",
            "--progress",
            "none",
            "-v",
        ])
    };
    let dest = lake.path().join("orders").display().to_string();
    let out = gatelake(args("api://orders-api", &dest), env.clone(), None).await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(json_out(&out)["rows"], 90);
    let requests = api.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        let auth = r.headers["authorization"].to_str().unwrap();
        let token = auth.strip_prefix("Bearer ").unwrap();
        assert_eq!(support::identity::claims(token)["aud"], "api://orders-api");
    }
    let mut secrets = entra.issued();
    secrets.push("sp-secret-8c1f2e9a77".into());
    assert_no_secret(
        &secrets,
        &[("stdout", &out.stdout), ("stderr", &out.stderr)],
    );

    // A token for another audience: the authorizer answers 401 and the run fails.
    let dest = lake.path().join("other").display().to_string();
    let out = gatelake(args("api://other-api", &dest), env, None).await;
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("401"), "{stderr}");
}

/// STS over HTTPS with the throwaway CA, trusted only through `--ca-bundle` (no
/// `SSL_CERT_FILE`): the AWS SDK's own HTTP client gets the same extra roots as every other
/// hop, for the pull and for `auth check`'s GetCallerIdentity.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sts_over_https_trusts_the_ca_bundle() {
    let entra = Entra::start(EntraConfig::default()).await;
    let cfg = entra.config();
    let issued: IssuedKeys = Arc::new(Mutex::new(HashMap::new()));
    let sts = StsFront::start_tls(
        TrustPolicy {
            issuer: format!("https://sts.windows.net/{}", cfg.tenant),
            audience: "api://AzureADTokenExchange".into(),
            subject: cfg.object_id.clone(),
        },
        issued.clone(),
    )
    .await;
    assert!(sts.url().starts_with("https://"));
    let api = ApiGateway::start(ApiConfig {
        records: 40,
        page_size: 20,
        auth: ApiAuthCheck::SigV4Issued {
            issued,
            region: "us-east-1".into(),
        },
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("federated-token");
    std::fs::write(&token_file, federated_token(&cfg, 3600)).unwrap();
    let env = vec![
        ("AZURE_TENANT_ID".to_string(), cfg.tenant.clone()),
        ("AZURE_CLIENT_ID".to_string(), cfg.client_id.clone()),
        (
            "AZURE_FEDERATED_TOKEN_FILE".to_string(),
            token_file.display().to_string(),
        ),
        ("AZURE_AUTHORITY_HOST".to_string(), entra.authority()),
        ("AWS_ENDPOINT_URL_STS".to_string(), sts.url()),
    ];
    let ca = ca_file().display().to_string();
    let lake = dir.path().join("lake").display().to_string();
    let mut args = s(&[
        "pull",
        "--url",
        &api.url("/prod/cursor"),
        "--paginate",
        "cursor",
        "--cursor-path",
        "next_cursor",
        "--records",
        "items",
        "--api-auth",
        "iam",
        "--region",
        "us-east-1",
        "--aws-role-arn",
        ROLE,
        "--ca-bundle",
        &ca,
        "--dest",
        &lake,
        "--output",
        "json",
        "--progress",
        "none",
    ]);
    let out = gatelake(args.clone(), env.clone(), None).await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(json_out(&out)["rows"], 40);
    assert_eq!(sts.exchanges(), 1);

    // auth check: the exchange and GetCallerIdentity both go to STS over HTTPS.
    args[0] = "check".into();
    args.insert(0, "auth".into());
    let out = gatelake(args, env, None).await;
    let v = json_out(&out);
    assert!(out.status.success(), "{v}\n{}", text(&out.stderr));
    let aws = v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hop"] == "aws")
        .unwrap()
        .clone();
    assert_eq!(aws["status"], "ok", "{aws}");
}

/// The standard AWS chain (no `--aws-role-arn`: the SDK's own web identity provider from
/// `AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE`) also reaches STS over HTTPS through
/// `--ca-bundle`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn standard_chain_reaches_sts_over_https_with_the_ca_bundle() {
    let issued: IssuedKeys = Arc::new(Mutex::new(HashMap::new()));
    let sts = StsFront::start_tls(
        TrustPolicy {
            issuer: GITHUB_ISSUER.into(),
            audience: "sts.amazonaws.com".into(),
            subject: GITHUB_SUB.into(),
        },
        issued.clone(),
    )
    .await;
    let api = ApiGateway::start(ApiConfig {
        records: 30,
        page_size: 10,
        auth: ApiAuthCheck::SigV4Issued {
            issued,
            region: "us-east-1".into(),
        },
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    let n = now();
    std::fs::write(
        &token_file,
        jwt(&json!({"iss": GITHUB_ISSUER, "aud": "sts.amazonaws.com", "sub": GITHUB_SUB, "iat": n, "nbf": n - 5, "exp": n + 600})),
    )
    .unwrap();
    let env = vec![
        ("AWS_ROLE_ARN".to_string(), ROLE.to_string()),
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE".to_string(),
            token_file.display().to_string(),
        ),
        (
            "AWS_ROLE_SESSION_NAME".to_string(),
            "chain-test".to_string(),
        ),
        ("AWS_ENDPOINT_URL_STS".to_string(), sts.url()),
    ];
    let ca = ca_file().display().to_string();
    let lake = dir.path().join("lake").display().to_string();
    let out = gatelake(
        s(&[
            "pull",
            "--url",
            &api.url("/prod/cursor"),
            "--paginate",
            "cursor",
            "--cursor-path",
            "next_cursor",
            "--records",
            "items",
            "--api-auth",
            "iam",
            "--region",
            "us-east-1",
            "--ca-bundle",
            &ca,
            "--dest",
            &lake,
            "--output",
            "json",
            "--progress",
            "none",
        ]),
        env,
        None,
    )
    .await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(json_out(&out)["rows"], 30);
    assert_eq!(sts.exchanges(), 1);
}

/// A storage token as a notebook's `getToken("storage")` hands it in.
fn storage_token(cfg: &EntraConfig) -> String {
    let n = now();
    jwt(&json!({
        "aud": "https://storage.azure.com", "iss": format!("https://sts.windows.net/{}/", cfg.tenant),
        "tid": cfg.tenant, "oid": cfg.object_id, "nbf": n - 5, "iat": n, "exp": n + 3600,
    }))
}

fn managed_identity_env(c: &Chain) -> Vec<(String, String)> {
    vec![
        ("IDENTITY_ENDPOINT".into(), c.entra.identity_endpoint()),
        ("IDENTITY_HEADER".into(), c.entra.config().identity_header),
        ("SSL_CERT_FILE".into(), ca_file().display().to_string()),
        ("AWS_ENDPOINT_URL_STS".into(), c.sts.url()),
    ]
}

fn as_auth_check(mut args: Vec<String>) -> Vec<String> {
    args[0] = "check".into();
    args.insert(0, "auth".into());
    args.retain(|a| a != "--create-container");
    args
}

/// The README's Synapse notebook recipe: the lake is written with a storage token handed in on
/// stdin, while the workspace's managed identity (`IDENTITY_ENDPOINT`) is exchanged with STS.
/// Each hop picks its own source under `auto`: the handed-in token only serves the audience it
/// carries. (Before identities were per hop, the stdin token served every hop and the AWS
/// exchange was refused: `auth check` exited 3.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notebook_recipe_storage_token_on_stdin_and_managed_identity_for_aws() {
    let c = chain(true, Duration::ZERO).await;
    let token = storage_token(&c.entra.config());
    let cont = container("nb");
    let out = gatelake(
        c.pull_args(&cont, &["--azure-token-stdin"]),
        managed_identity_env(&c),
        Some(format!("{token}\n")),
    )
    .await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(json_out(&out)["rows"], 300);
    assert_eq!(c.sts.exchanges(), 1);

    // The manifest names who the run was at each hop: Azure source, object id and tenant;
    // the role asked for, the role STS assumed and the session's name. No token.
    let cfg = c.entra.config();
    let stored = stored_objects(&cont).await;
    let (_, manifest) = stored
        .iter()
        .find(|(p, _)| p.ends_with("_manifest.json"))
        .expect("a manifest");
    let manifest: Value = serde_json::from_slice(manifest).unwrap();
    support::manifest::check_manifest(&manifest);
    let identity = |role: &str| {
        manifest["identities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["role"] == role)
            .unwrap_or_else(|| panic!("no {role} identity in {manifest}"))
            .clone()
    };
    let storage = identity("storage");
    assert_eq!(storage["source"], "token on stdin (--azure-token-stdin)");
    assert_eq!(storage["object_id"], cfg.object_id.as_str());
    assert_eq!(storage["tenant"], cfg.tenant.as_str());
    let aws = identity("aws");
    assert_eq!(
        aws["source"], "managed identity (IDENTITY_ENDPOINT)",
        "{aws}"
    );
    assert_eq!(aws["object_id"], cfg.object_id.as_str());
    assert_eq!(aws["role_arn"], ROLE);
    let assumed = aws["name"].as_str().unwrap();
    assert!(assumed.contains(":assumed-role/gatelake-reader/"), "{aws}");
    assert!(
        aws["session_name"]
            .as_str()
            .unwrap()
            .starts_with("gatelake-cursor-"),
        "{aws}"
    );
    assert_eq!(identity("api")["name"], assumed);
    let mut secrets = c.entra.issued();
    secrets.push(token.clone());
    secrets.extend(c.sts.issued_secrets());
    let blobs: Vec<(&str, &[u8])> = stored
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    assert_no_secret(&secrets, &blobs);

    let out = gatelake(
        as_auth_check(c.pull_args(&cont, &["--azure-token-stdin"])),
        managed_identity_env(&c),
        Some(format!("{token}\n")),
    )
    .await;
    let v = json_out(&out);
    assert!(out.status.success(), "{v}\n{}", text(&out.stderr));
    let hops = v["hops"].as_array().unwrap();
    let azure = hops.iter().find(|h| h["hop"] == "azure").unwrap();
    assert_eq!(
        azure["identity"]["hops"]["storage"]["source"], "token on stdin (--azure-token-stdin)",
        "{azure}"
    );
    assert_eq!(
        azure["identity"]["hops"]["aws"]["source"], "managed identity (IDENTITY_ENDPOINT)",
        "{azure}"
    );
    for hop in ["aws", "api", "lake"] {
        let h = hops.iter().find(|h| h["hop"] == hop).unwrap();
        assert_eq!(h["status"], "ok", "{h}");
    }
    let mut secrets = c.entra.issued();
    secrets.push(token);
    secrets.extend(c.sts.issued_secrets());
    assert_no_secret(
        &secrets,
        &[("stdout", &out.stdout), ("stderr", &out.stderr)],
    );
}

/// `auth check` checks each hop on its own: when the AWS hop's Azure identity is refused (an
/// explicit `token` for it, but only a storage token handed in), the lake is still probed with
/// the storage token, and the refusal names both audiences and the flag that fixes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auth_check_reports_each_hop_on_its_own() {
    let c = chain(true, Duration::ZERO).await;
    let token = storage_token(&c.entra.config());
    let cont = container("perhop");
    // The container must exist for the lake probe.
    let out = gatelake(
        c.pull_args(
            &cont,
            &[
                "--azure-token-stdin",
                "--max-pages",
                "1",
                "--max-pages-complete",
            ],
        ),
        managed_identity_env(&c),
        Some(format!("{token}\n")),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = gatelake(
        as_auth_check(c.pull_args(&cont, &["--azure-token-stdin", "--azure-auth-aws", "token"])),
        managed_identity_env(&c),
        Some(format!("{token}\n")),
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    let v = json_out(&out);
    let hop = |name: &str| {
        v["hops"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["hop"] == name)
            .unwrap()
            .clone()
    };
    let azure = hop("azure");
    assert_eq!(azure["status"], "failed", "{azure}");
    let err = azure["error"].as_str().unwrap();
    for wanted in [
        "--azure-auth-aws token",
        "https://storage.azure.com",
        "api://AzureADTokenExchange",
    ] {
        assert!(err.contains(wanted), "{wanted} not in {err}");
    }
    assert_eq!(
        azure["identity"]["hops"]["storage"]["source"],
        "token on stdin (--azure-token-stdin)"
    );
    assert_eq!(hop("aws")["status"], "skipped");
    assert_eq!(hop("lake")["status"], "ok", "{v}");
    assert_no_secret(
        &[token],
        &[("stdout", &out.stdout), ("stderr", &out.stderr)],
    );
}

/// `--show-settings` names each hop's resolved source and the flag that chose it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn show_settings_names_the_source_per_hop() {
    let c = chain(true, Duration::ZERO).await;
    let token = storage_token(&c.entra.config());
    let out = gatelake(
        c.pull_args(
            &container("show"),
            &["--azure-token-stdin", "--show-settings"],
        ),
        managed_identity_env(&c),
        Some(format!("{token}\n")),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = json_out(&out);
    let row = |key: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == key)
            .unwrap_or_else(|| panic!("no {key} in {rows}"))
            .clone()
    };
    assert!(row("azure-source-storage")["value"]
        .as_str()
        .unwrap()
        .starts_with("token on stdin"));
    assert!(row("azure-source-aws")["value"]
        .as_str()
        .unwrap()
        .starts_with("managed identity (IDENTITY_ENDPOINT)"));
    assert_eq!(
        row("azure-source-aws")["origin"],
        "resolved from --azure-auth-aws auto"
    );
    assert!(row("azure-token")["origin"]
        .as_str()
        .unwrap()
        .contains("aud https://storage.azure.com"));
    assert_no_secret(
        &[token],
        &[("stdout", &out.stdout), ("stderr", &out.stderr)],
    );
}

/// No side effects before the identity is known: a role whose trust policy refuses the token
/// and an API bearer identity that is refused both end in exit 3 before the job's lock is
/// taken or a checkpoint written — the destination holds no `_state/`. The AccessDenied
/// message names the role ARN and what its trust policy must match (iss, sub, aud), never
/// the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_identity_leaves_nothing_behind() {
    let entra = Entra::start(EntraConfig::default()).await;
    let cfg = entra.config();
    let issued: IssuedKeys = Arc::new(Mutex::new(HashMap::new()));
    let sts = StsFront::start(
        TrustPolicy {
            issuer: format!("https://sts.windows.net/{}", cfg.tenant),
            audience: "api://AzureADTokenExchange".into(),
            subject: "someone-else".into(),
        },
        issued.clone(),
    )
    .await;
    let api = ApiGateway::start(ApiConfig {
        records: 40,
        page_size: 20,
        auth: ApiAuthCheck::SigV4Issued {
            issued,
            region: "us-east-1".into(),
        },
        ..Default::default()
    })
    .await;
    let lake = tempfile::tempdir().unwrap();
    let dest = lake.path().join("orders");
    let mi_env = |header: &str| {
        vec![
            ("IDENTITY_ENDPOINT".to_string(), entra.identity_endpoint()),
            ("IDENTITY_HEADER".to_string(), header.to_string()),
            ("SSL_CERT_FILE".to_string(), ca_file().display().to_string()),
            ("AWS_ENDPOINT_URL_STS".to_string(), sts.url()),
        ]
    };
    let common = |auth: &[&str]| {
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
            "--region",
            "us-east-1",
            "--dest",
            &dest.display().to_string(),
            "--output",
            "json",
            "--progress",
            "none",
        ]);
        a.extend(s(auth));
        a
    };

    // The role's trust policy does not name this identity.
    let out = gatelake(
        common(&["--api-auth", "iam", "--aws-role-arn", ROLE]),
        mi_env(&cfg.identity_header),
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = json_out(&out)["error"].as_str().unwrap().to_string();
    for wanted in [
        ROLE,
        "trust policy",
        &format!(":sub = {}", cfg.object_id),
        ":aud = api://AzureADTokenExchange",
        &format!("sts.windows.net/{}", cfg.tenant),
    ] {
        assert!(err.contains(wanted), "{wanted} not in {err}");
    }
    assert!(
        !dest.join("_state").exists(),
        "a refused role left {:?}",
        std::fs::read_dir(&dest).map(|d| d.count())
    );
    assert_eq!(api.requests().len(), 0);

    // The API's bearer identity (a managed identity whose header is stale) is refused.
    let out = gatelake(
        common(&[
            "--api-auth",
            "bearer",
            "--bearer-from",
            "azure",
            "--bearer-audience",
            "api://orders-api",
        ]),
        mi_env("stale-header"),
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(!dest.join("_state").exists());
    let mut secrets = entra.issued();
    secrets.extend(sts.issued_secrets());
    assert_no_secret(
        &secrets,
        &[("stdout", &out.stdout), ("stderr", &out.stderr)],
    );
}

/// `gatelake sql` reads the run's manifest with the same identity resolution and HTTP stack as
/// `pull`: a service principal from the local Entra, Azurite over HTTPS with OAuth, the test
/// CA given with `--ca-bundle` (no SSL_CERT_FILE). Before, `sql` knew only the storage account
/// variables and the platform's roots.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sql_uses_the_same_identity_and_ca_bundle_as_pull() {
    let secret = format!("sp-secret-{:016x}", rand::random::<u64>());
    let entra = Entra::start(EntraConfig {
        client_secret: Some(secret.clone()),
        ..Default::default()
    })
    .await;
    let cfg = entra.config();
    let api = ApiGateway::start(ApiConfig {
        records: 30,
        ..Default::default()
    })
    .await;
    let cont = container("sql");
    let dest = format!("{}/{cont}/orders", oauth_blob());
    let env = vec![
        ("AZURE_TENANT_ID".to_string(), cfg.tenant.clone()),
        ("AZURE_CLIENT_ID".to_string(), cfg.client_id.clone()),
        ("AZURE_CLIENT_SECRET".to_string(), secret.clone()),
        ("AZURE_AUTHORITY_HOST".to_string(), entra.authority()),
    ];
    let ca = ca_file().display().to_string();
    let out = gatelake(
        s(&[
            "pull",
            "--url",
            &api.url("/prod/cursor"),
            "--records",
            "items",
            "--format",
            "parquet",
            "--dest",
            &dest,
            "--create-container",
            "--ca-bundle",
            &ca,
            "--output",
            "json",
            "--progress",
            "none",
        ]),
        env.clone(),
        None,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = gatelake(
        s(&[
            "sql",
            "--dest",
            &dest,
            "--ca-bundle",
            &ca,
            "--azure-auth",
            "service-principal",
        ]),
        env,
        None,
    )
    .await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let sql = text(&out.stdout);
    assert!(sql.contains("COPY INTO"), "{sql}");
    assert!(sql.contains(&cont), "{sql}");
    let mut secrets = entra.issued();
    secrets.push(secret);
    assert_no_secret(
        &secrets,
        &[("stdout", &out.stdout), ("stderr", &out.stderr)],
    );
}

/// `gatelake sql` on a machine whose only identity is a managed identity (App Service style,
/// `IDENTITY_ENDPOINT`), with the test CA given only by `--ca-bundle`: the managed identity's
/// endpoint and Azurite over HTTPS both trust it, as they do for `pull`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sql_reads_the_manifest_with_a_managed_identity_and_the_ca_bundle() {
    let entra = Entra::start(EntraConfig::default()).await;
    let cfg = entra.config();
    let api = ApiGateway::start(ApiConfig {
        records: 12,
        ..Default::default()
    })
    .await;
    let cont = container("sqlmi");
    let dest = format!("{}/{cont}/orders", oauth_blob());
    let env = vec![
        ("IDENTITY_ENDPOINT".to_string(), entra.identity_endpoint()),
        ("IDENTITY_HEADER".to_string(), cfg.identity_header.clone()),
    ];
    let ca = ca_file().display().to_string();
    let out = gatelake(
        s(&[
            "pull",
            "--url",
            &api.url("/prod/cursor"),
            "--records",
            "items",
            "--dest",
            &dest,
            "--create-container",
            "--azure-auth",
            "managed-identity",
            "--ca-bundle",
            &ca,
            "--output",
            "json",
            "--progress",
            "none",
        ]),
        env.clone(),
        None,
    )
    .await;
    assert!(out.status.success(), "pull: {}", text(&out.stderr));
    let out = gatelake(
        s(&[
            "sql",
            "--dest",
            &dest,
            "--ca-bundle",
            &ca,
            "--azure-auth",
            "managed-identity",
            "--output",
            "json",
        ]),
        env,
        None,
    )
    .await;
    assert!(out.status.success(), "sql: {}", text(&out.stderr));
    let sql = json_out(&out)["sql"].as_str().unwrap().to_string();
    assert!(sql.contains(&cont), "{sql}");
    assert_no_secret(
        &entra.issued(),
        &[("stdout", &out.stdout), ("stderr", &out.stderr)],
    );
}
