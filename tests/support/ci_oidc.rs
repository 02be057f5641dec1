//! Local stand-ins for the OIDC tokens of the CI systems other than GitHub Actions (GitHub's
//! token endpoint is [`super::identity::GithubOidc`]), shaped as the real ones are:
//!
//! - [`gitlab_id_token`]: GitLab CI has no endpoint to call: the runner puts each ID token the
//!   job's `id_tokens:` declares into a variable before the script starts. The stand-in mints
//!   the same JWT: `iss` = the GitLab instance ([`GITLAB_ISSUER`]), `sub` =
//!   `project_path:GROUP/PROJECT:ref_type:branch:ref:BRANCH` ([`GITLAB_SUB`]), `aud` as the job
//!   asked, `exp` a few minutes out. [`GitlabIdTokens`] serves the same on loopback
//!   (`GET /id_token?aud=…`) for the CI runner stand-in (`tests/support/ci_runner.py`), which
//!   fills each `id_tokens:` variable from it as the GitLab runner does before the script.
//! - [`AdoOidc`]: the Azure DevOps OIDC token endpoint behind `SYSTEM_OIDCREQUESTURI`
//!   (`POST {uri}?api-version=7.1&serviceConnectionId=ID`, `Authorization: Bearer
//!   $SYSTEM_ACCESSTOKEN`, `X-TFS-FedAuthRedirect: Suppress`), plain HTTP on loopback. It
//!   answers `{"oidcToken": jwt}` with `iss` = `https://vstoken.dev.azure.com/{org id}`,
//!   `sub` = `sc://ORG/PROJECT/CONNECTION` ([`ADO_SUB`]) and `aud` always
//!   `api://AzureADTokenExchange`; a wrong access token gets 401, an unknown connection 404,
//!   a missing api-version 400 — as the service does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::identity::{jwt, now, Server};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const GITLAB_ISSUER: &str = "https://gitlab.com";
pub const GITLAB_SUB: &str = "project_path:acme/data-jobs:ref_type:branch:ref:main";

/// The ID token GitLab would put in a job variable for `aud`.
pub fn gitlab_id_token(aud: &str) -> String {
    let n = now();
    jwt(&json!({
        "iss": GITLAB_ISSUER, "sub": GITLAB_SUB, "aud": aud,
        "namespace_path": "acme", "project_path": "acme/data-jobs", "ref": "main",
        "ref_type": "branch", "iat": n, "nbf": n - 5, "exp": n + 300,
    }))
}

/// Mints GitLab ID tokens for the CI runner stand-in, and remembers them (to prove none leaks).
pub struct GitlabIdTokens {
    pub server: Server,
    issued: Arc<Mutex<Vec<String>>>,
}

impl GitlabIdTokens {
    pub async fn start() -> GitlabIdTokens {
        let issued = Arc::new(Mutex::new(Vec::new()));
        let log = issued.clone();
        let app = Router::new().route(
            "/id_token",
            axum::routing::get(move |Query(q): Query<HashMap<String, String>>| {
                let log = log.clone();
                async move {
                    let Some(aud) = q.get("aud") else {
                        return (StatusCode::BAD_REQUEST, "aud is required".to_string());
                    };
                    let token = gitlab_id_token(aud);
                    log.lock().unwrap().push(token.clone());
                    (StatusCode::OK, token)
                }
            }),
        );
        GitlabIdTokens {
            server: super::identity::serve_plain(app).await,
            issued,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/id_token", self.server.addr.port())
    }

    pub fn issued(&self) -> Vec<String> {
        self.issued.lock().unwrap().clone()
    }
}

pub const ADO_ORG_ID: &str = "0ca3ddd9-f0b0-4635-a98c-5866526961b6";
pub const ADO_SERVICE_CONNECTION_ID: &str = "5b9e3c1a-7d7e-4a55-9a4b-2f0d1c3e4b5a";
pub const ADO_SUB: &str = "sc://acme/data/gatelake-lake";

pub fn ado_issuer() -> String {
    format!("https://vstoken.dev.azure.com/{ADO_ORG_ID}")
}

struct AdoState {
    access_token: String,
    issued: Mutex<Vec<String>>,
}

/// The Azure DevOps OIDC token endpoint.
pub struct AdoOidc {
    pub server: Server,
    /// `SYSTEM_ACCESSTOKEN` (the job's access token).
    pub access_token: String,
    state: Arc<AdoState>,
}

impl AdoOidc {
    pub async fn start() -> AdoOidc {
        let access_token = format!("ado_sys_{}", rand::random::<u64>());
        let state = Arc::new(AdoState {
            access_token: access_token.clone(),
            issued: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route(
                "/acme/{project}/_apis/distributedtask/hubs/build/plans/{plan}/jobs/{job}/oidctoken",
                post(ado_token),
            )
            .with_state(state.clone());
        AdoOidc {
            server: super::identity::serve_plain(app).await,
            access_token,
            state,
        }
    }

    /// `SYSTEM_OIDCREQUESTURI` (the job's own oidctoken URL, without a query).
    pub fn request_uri(&self) -> String {
        format!(
            "http://127.0.0.1:{}/acme/6f1b2a4e-0000-4000-8000-000000000001/_apis/distributedtask/hubs/build/plans/7a2c-plan/jobs/9d3e-job/oidctoken",
            self.server.addr.port()
        )
    }

    pub fn issued(&self) -> Vec<String> {
        self.state.issued.lock().unwrap().clone()
    }
}

async fn ado_token(
    State(state): State<Arc<AdoState>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(format!("Bearer {}", state.access_token).as_str()) {
        // With X-TFS-FedAuthRedirect: Suppress the service says 401; without it, it sends
        // the caller to a sign-in page.
        if headers.get("x-tfs-fedauthredirect").is_none() {
            return (StatusCode::FOUND, [("location", "https://login.test/")], "").into_response();
        }
        return (
            StatusCode::UNAUTHORIZED,
            json!({"message": "TF400813: The user is not authorized to access this resource."})
                .to_string(),
        )
            .into_response();
    }
    if !q.contains_key("api-version") {
        return (
            StatusCode::BAD_REQUEST,
            json!({"message": "VssInvalidPreviewVersionException: api-version is required"})
                .to_string(),
        )
            .into_response();
    }
    if q.get("serviceConnectionId").map(String::as_str) != Some(ADO_SERVICE_CONNECTION_ID) {
        return (
            StatusCode::NOT_FOUND,
            json!({"message": "Service connection not found or not authorized for this pipeline."})
                .to_string(),
        )
            .into_response();
    }
    let n = now();
    let token = jwt(&json!({
        "iss": ado_issuer(), "sub": ADO_SUB, "aud": "api://AzureADTokenExchange",
        "org_id": ADO_ORG_ID, "run_id": "42", "iat": n, "nbf": n - 5, "exp": n + 600,
    }));
    state.issued.lock().unwrap().push(token.clone());
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        json!({ "oidcToken": token }).to_string(),
    )
        .into_response()
}
