//! No secret ever reaches an output. Full pulls with every kind of auth — API key, static
//! bearer, bearer from Azure (an Entra token for the API's audience), IAM (SigV4 with
//! credentials from STS web identity) — and every kind of storage credential — account key,
//! SAS, OAuth token from Entra (service principal with a secret, with a certificate, workload
//! identity) — into Azurite and into a local folder, all at debug log level.
//! Then every secret the run handled (or that the emulators issued to it) is looked for in
//! stdout, stderr, every blob under the destinations (checkpoint, lock, manifest, load SQL,
//! data) and every file of the local lake. A failure names the secret and where it appeared,
//! never the value.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use base64::Engine as _;
use hmac::Mac as _;
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};
use support::apigw::{ApiAuthCheck, ApiConfig, ApiGateway, IssuedKeys};
use support::azurite::azurite;
use support::identity::{ca_file, jwt, now, Entra, EntraConfig, StsFront, TrustPolicy};
use support::run::{s, summary, text};

const ROLE: &str = "arn:aws:iam::123456789012:role/gatelake-reader";
const API_KEY: &str = "ak-live-5f0c3e9b2d7a41c8";
const BEARER: &str = "eyJstatic-bearer-91d2c7e4a0b3";
const CLIENT_SECRET: &str = "sp-secret-e3b0c44298fc1c14";

/// A named secret and its value.
struct Secret {
    name: String,
    value: String,
}

fn secret(name: impl Into<String>, value: impl Into<String>) -> Secret {
    Secret {
        name: name.into(),
        value: value.into(),
    }
}

/// An account SAS for Azurite's development account, signed with its key (blob service,
/// all resource types, every permission the sink uses).
fn account_sas(account: &str, key_b64: &str) -> (String, String) {
    let version = "2019-12-12";
    let expiry = (time::OffsetDateTime::now_utc() + time::Duration::hours(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let expiry = expiry
        .split('.')
        .next()
        .unwrap()
        .trim_end_matches('Z')
        .to_string()
        + "Z";
    let (perms, services, types, protocol) = ("rwdlacup", "b", "sco", "https,http");
    let to_sign =
        format!("{account}\n{perms}\n{services}\n{types}\n\n{expiry}\n\n{protocol}\n{version}\n");
    let key = base64::engine::general_purpose::STANDARD
        .decode(key_b64)
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(to_sign.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let sas = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("sv", version)
        .append_pair("ss", services)
        .append_pair("srt", types)
        .append_pair("sp", perms)
        .append_pair("se", &expiry)
        .append_pair("spr", protocol)
        .append_pair("sig", &sig)
        .finish();
    (sas, sig)
}

/// The common pull flags against `api`.
fn pull(api: &ApiGateway, dest: &str, auth: &[&str]) -> Vec<String> {
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
        "--dest",
        dest,
        "--create-container",
        "--output",
        "json",
        "--progress",
        "none",
        "-v",
    ]);
    a.extend(s(auth));
    a
}

fn ok(out: &Output, what: &str, rows: u64) {
    assert!(
        out.status.success(),
        "{what} failed\nstderr: {}\nstdout: {}",
        text(&out.stderr),
        text(&out.stdout)
    );
    assert_eq!(summary(out)["rows"], rows, "{what}");
}

/// Every object in `container`, read with `credential`.
async fn blobs(endpoint: &str, container: &str, https: bool) -> Vec<(String, Vec<u8>)> {
    use gatelake::sink::azure::{auth, AzureLocation, AzureSinkBuilder, StorageCredential};
    use gatelake::sink::Sink;
    let loc = AzureLocation::parse(&format!("{endpoint}/{container}")).unwrap();
    let http = gatelake::http::storage_client(&gatelake::http::HttpOptions {
        ca_bundles: if https { vec![ca_file()] } else { vec![] },
        ..Default::default()
    })
    .unwrap();
    let sink = AzureSinkBuilder::new(loc)
        .with_credential(StorageCredential::SharedKey {
            account: auth::DEV_ACCOUNT.into(),
            key: gatelake::secret::Secret::new(auth::DEV_ACCOUNT_KEY),
        })
        .with_http_client(http)
        .build()
        .unwrap();
    let mut out = Vec::new();
    for o in sink.list("").await.unwrap() {
        let data = sink.get(&o.path).await.unwrap().unwrap().data.to_vec();
        out.push((format!("{container}/{}", o.path), data));
    }
    out
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// Gzip and zstd chunks are compressed: look inside them too.
fn decompressed(name: &str, data: &[u8]) -> Vec<u8> {
    use std::io::Read as _;
    if name.ends_with(".gz") {
        let mut out = Vec::new();
        if flate2::read::MultiGzDecoder::new(data)
            .read_to_end(&mut out)
            .is_ok()
        {
            return out;
        }
    }
    data.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_secret_in_any_output_of_any_auth_kind() {
    let az = azurite();
    let oauth_blob = std::env::var("GATELAKE_TEST_AZURITE_OAUTH_BLOB").expect(
        "GATELAKE_TEST_AZURITE_OAUTH_BLOB is not set: run the suite with `bash scripts/test.sh`, which starts Azurite with OAuth over HTTPS",
    );
    let work = tempfile::tempdir().unwrap();
    let certificate = support::identity::make_client_certificate(work.path(), false);
    let entra = Entra::start(EntraConfig {
        client_secret: Some(CLIENT_SECRET.into()),
        certificate: Some(certificate.clone()),
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
    let api = |auth: ApiAuthCheck| {
        ApiGateway::start(ApiConfig {
            records: 60,
            page_size: 20,
            auth,
            ..Default::default()
        })
    };
    let api_key = api(ApiAuthCheck::ApiKey(API_KEY.into())).await;
    let api_bearer = api(ApiAuthCheck::Bearer(BEARER.into())).await;
    let api_entra = api(ApiAuthCheck::EntraJwt {
        issuer: format!("https://sts.windows.net/{}/", cfg.tenant),
        audience: "api://orders-api".into(),
    })
    .await;
    let api_iam = api(ApiAuthCheck::SigV4Issued {
        issued: issued.clone(),
        region: "us-east-1".into(),
    })
    .await;

    let lake = work.path().join("lake");
    let federated_path = work.path().join("federated-token");
    let fed = cfg.federated.clone().unwrap();
    let n = now();
    let federated = jwt(&json!({
        "iss": fed.issuer, "sub": fed.subject, "aud": fed.audience,
        "iat": n, "nbf": n - 5, "exp": n + 3600,
    }));
    std::fs::write(&federated_path, &federated).unwrap();
    let (sas, sas_sig) = account_sas(az.account, az.key);
    let suffix = format!("{:08x}", rand::random::<u32>());
    let (c_key, c_sas, c_oauth, c_cert) = (
        format!("sec-key-{suffix}"),
        format!("sec-sas-{suffix}"),
        format!("sec-oauth-{suffix}"),
        format!("sec-cert-{suffix}"),
    );
    // Everything at debug level, our modules and every other crate.
    let base = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut env = vec![
            ("GATELAKE_LOG".to_string(), "debug".to_string()),
            // Nothing listens there: `auto`'s IMDS probe fails at once instead of waiting.
            (
                "IMDS_ENDPOINT".to_string(),
                "http://127.0.0.1:9".to_string(),
            ),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    };
    let ca = ca_file().display().to_string();
    let mut outputs: Vec<(String, Output)> = Vec::new();

    // 1. API key → Azurite by account key.
    let out = support::run::gatelake(
        pull(
            &api_key,
            &az.dest_url(&c_key, "orders"),
            &["--api-auth", "api-key", "--azure-auth", "key"],
        ),
        base(&[
            ("GATELAKE_API_KEY", API_KEY),
            ("AZURE_STORAGE_ACCOUNT", az.account),
            ("AZURE_STORAGE_KEY", az.key),
        ]),
    )
    .await;
    ok(&out, "api-key into Azurite by account key", 60);
    outputs.push(("api-key/account-key".into(), out));

    // 2. Static bearer → Azurite by SAS.
    let out = support::run::gatelake(
        pull(
            &api_bearer,
            &az.dest_url(&c_sas, "orders"),
            &["--api-auth", "bearer", "--azure-auth", "sas"],
        ),
        base(&[
            ("GATELAKE_BEARER_TOKEN", BEARER),
            ("AZURE_STORAGE_SAS_TOKEN", &sas),
        ]),
    )
    .await;
    ok(&out, "static bearer into Azurite by SAS", 60);
    outputs.push(("bearer/sas".into(), out));

    // 3. Bearer from Azure (service principal with a secret) → Azurite with OAuth.
    let authority = entra.authority();
    let out = support::run::gatelake(
        pull(
            &api_entra,
            &format!("{oauth_blob}/{c_oauth}/orders"),
            &[
                "--api-auth",
                "bearer",
                "--bearer-from",
                "azure",
                "--bearer-audience",
                "api://orders-api",
            ],
        ),
        base(&[
            ("AZURE_TENANT_ID", &cfg.tenant),
            ("AZURE_CLIENT_ID", &cfg.client_id),
            ("AZURE_CLIENT_SECRET", CLIENT_SECRET),
            ("AZURE_AUTHORITY_HOST", &authority),
            ("SSL_CERT_FILE", &ca),
        ]),
    )
    .await;
    ok(&out, "bearer from Azure into Azurite with OAuth", 60);
    outputs.push(("bearer-from-azure/oauth".into(), out));

    // 4. IAM: workload identity → Entra → STS → SigV4, into a local folder.
    let sts_url = sts.url();
    let federated_file = federated_path.display().to_string();
    let out = support::run::gatelake(
        pull(
            &api_iam,
            &lake.join("orders").display().to_string(),
            &[
                "--api-auth",
                "iam",
                "--region",
                "us-east-1",
                "--aws-role-arn",
                ROLE,
            ],
        ),
        base(&[
            ("AZURE_TENANT_ID", &cfg.tenant),
            ("AZURE_CLIENT_ID", &cfg.client_id),
            ("AZURE_FEDERATED_TOKEN_FILE", &federated_file),
            ("AZURE_AUTHORITY_HOST", &authority),
            ("SSL_CERT_FILE", &ca),
            ("AWS_ENDPOINT_URL_STS", &sts_url),
        ]),
    )
    .await;
    ok(&out, "iam (STS web identity) into a local folder", 60);
    outputs.push(("iam/local".into(), out));
    // 5. API key into the local folder too (a second job).
    let out = support::run::gatelake(
        pull(
            &api_key,
            &lake.join("orders-by-key").display().to_string(),
            &["--api-auth", "api-key"],
        ),
        base(&[("GATELAKE_API_KEY", API_KEY)]),
    )
    .await;
    ok(&out, "api-key into a local folder", 60);
    outputs.push(("api-key/local".into(), out));

    // 6. Static bearer → Azurite with OAuth, the Entra token got with a certificate.
    let pem = certificate.pem_path.display().to_string();
    let out = support::run::gatelake(
        pull(
            &api_bearer,
            &format!("{oauth_blob}/{c_cert}/orders"),
            &["--api-auth", "bearer"],
        ),
        base(&[
            ("GATELAKE_BEARER_TOKEN", BEARER),
            ("AZURE_TENANT_ID", &cfg.tenant),
            ("AZURE_CLIENT_ID", &cfg.client_id),
            ("AZURE_CLIENT_CERTIFICATE_PATH", &pem),
            ("AZURE_AUTHORITY_HOST", &authority),
            ("SSL_CERT_FILE", &ca),
        ]),
    )
    .await;
    ok(
        &out,
        "certificate service principal into Azurite with OAuth",
        60,
    );
    outputs.push(("bearer/certificate-oauth".into(), out));

    // Every secret handled or issued.
    let mut secrets = vec![
        secret("API key", API_KEY),
        secret("static bearer token", BEARER),
        secret("client secret", CLIENT_SECRET),
        secret("federated token", federated),
        secret("account key", az.key),
        secret("SAS signature", sas_sig.clone()),
        secret(
            "SAS signature (URL-encoded)",
            url::form_urlencoded::byte_serialize(sas_sig.as_bytes()).collect::<String>(),
        ),
    ];
    for (i, a) in entra.assertions().into_iter().enumerate() {
        secrets.push(secret(format!("client assertion #{i}"), a));
    }
    for line in certificate
        .key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
    {
        secrets.push(secret("a line of the certificate's private key", line));
    }
    for (i, t) in entra.issued().into_iter().enumerate() {
        secrets.push(secret(format!("Entra access token #{i}"), t));
    }
    for (ak, (sk, st)) in issued.lock().unwrap().iter() {
        secrets.push(secret(format!("AWS secret key of {ak}"), sk.clone()));
        secrets.push(secret(format!("AWS session token of {ak}"), st.clone()));
    }
    let mut signatures = 0;
    for r in api_iam.requests() {
        if let Some(sig) = r
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split("Signature=").nth(1))
        {
            signatures += 1;
            secrets.push(secret("SigV4 signature of an API request", sig));
        }
    }
    assert!(signatures > 0, "the IAM API saw no signed request");
    assert!(
        secrets
            .iter()
            .any(|s| s.name.starts_with("AWS session token")),
        "STS issued nothing"
    );
    assert!(entra.issued().len() >= 2, "Entra issued too few tokens");

    // Everywhere they must not be.
    let mut places: Vec<(String, Vec<u8>)> = Vec::new();
    for (what, out) in &outputs {
        places.push((format!("stdout of {what}"), out.stdout.clone()));
        places.push((format!("stderr of {what}"), out.stderr.clone()));
    }
    for c in [&c_key, &c_sas] {
        places.extend(blobs(&az.blob_endpoint, c, false).await);
    }
    places.extend(blobs(&oauth_blob, &c_oauth, true).await);
    places.extend(blobs(&oauth_blob, &c_cert, true).await);
    places.extend(files(&lake));
    for must in [
        "_state/checkpoint.json",
        "_state/lock",
        "_manifest.json",
        "load.sql",
    ] {
        for c in [&c_key, &c_sas, &c_oauth, &c_cert] {
            assert!(
                places
                    .iter()
                    .any(|(p, _)| p.starts_with(c.as_str()) && p.ends_with(must)),
                "no {must} in {c}: {:?}",
                places.iter().map(|(p, _)| p).collect::<Vec<_>>()
            );
        }
    }
    assert!(places
        .iter()
        .any(|(p, _)| p.contains("orders-by-key") && p.ends_with("checkpoint.json")));

    // The runs really logged at debug level, and the scan really finds a planted secret.
    assert!(
        outputs
            .iter()
            .all(|(_, o)| text(&o.stderr).contains("DEBUG")),
        "a run did not log at debug level"
    );
    let planted = vec![("planted".to_string(), format!("x {BEARER} y").into_bytes())];
    assert_eq!(leaks(&planted, &secrets).len(), 1);

    let found = leaks(&places, &secrets);
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
}

/// "<secret name> appears in <place>" for every secret found in a place.
fn leaks(places: &[(String, Vec<u8>)], secrets: &[Secret]) -> Vec<String> {
    let mut out = Vec::new();
    for (place, data) in places {
        let hay = String::from_utf8_lossy(&decompressed(place, data)).into_owned();
        for s in secrets.iter().filter(|s| s.value.len() >= 8) {
            if hay.contains(s.value.as_str()) {
                out.push(format!("{} appears in {place}", s.name));
            }
        }
    }
    out
}
