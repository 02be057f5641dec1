//! A CI job's own OIDC token: the one credential a scheduled job has without anyone storing a
//! secret for it. Each CI system hands it out differently, so each is one
//! [`WebIdentityTokenSource`]:
//! - GitHub Actions: [`GithubOidcSource`] (in `web_identity`), a GET to
//!   `ACTIONS_ID_TOKEN_REQUEST_URL` with `ACTIONS_ID_TOKEN_REQUEST_TOKEN`, any audience;
//! - GitLab CI: [`GitlabIdTokenSource`], the JWT GitLab puts in the variable the job's
//!   `id_tokens:` names (default [`DEFAULT_GITLAB_TOKEN_VAR`], or the name in
//!   `GATELAKE_GITLAB_TOKEN_VAR`); its audience is fixed by the job's YAML;
//! - Azure DevOps: [`AzureDevopsOidcSource`], a POST to
//!   `$SYSTEM_OIDCREQUESTURI?api-version=7.1&serviceConnectionId=…` with
//!   `SYSTEM_ACCESSTOKEN` as the bearer, answering `{"oidcToken": …}` (audience always
//!   `api://AzureADTokenExchange`, subject `sc://ORG/PROJECT/CONNECTION`).
//!
//! The same token serves two hops: AWS STS (`--web-identity github|gitlab|azure-devops`) and
//! Entra, as the federated client assertion of the `ci-oidc` Azure source. Sources are asked on
//! every exchange and fetch afresh (these tokens live minutes); they cache nothing. Errors name
//! the variable or CI setting to fix and never quote a token or the request token.

use crate::clock::{Clock, SystemClock};
use crate::identity::azure::AzureSource;
use crate::identity::claims::TokenClaims;
use crate::identity::web_identity::{WebIdentityError, WebIdentityTokenSource};
use crate::secret::Secret;
use async_trait::async_trait;
use std::sync::Arc;
use url::Url;

pub use crate::identity::web_identity::GithubOidcSource;

/// The variable GitLab's `id_tokens:` fills when the user names none other (the name
/// GitLab's own cloud examples use).
pub const DEFAULT_GITLAB_TOKEN_VAR: &str = "GITLAB_OIDC_TOKEN";
/// Names the variable holding the GitLab ID token, when it is not [`DEFAULT_GITLAB_TOKEN_VAR`].
pub const GITLAB_TOKEN_VAR_SETTING: &str = "GATELAKE_GITLAB_TOKEN_VAR";
/// The Azure DevOps service connection whose federated credential the token is for.
pub const ADO_SERVICE_CONNECTION_SETTING: &str = "GATELAKE_ADO_SERVICE_CONNECTION_ID";
/// What the `AzureCLI@2` / `AzurePowerShell@5` tasks export for their service connection.
pub const ADO_TASK_SERVICE_CONNECTION: &str = "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID";
/// The one audience of Azure DevOps' OIDC tokens.
const ADO_AUDIENCE: &str = "api://AzureADTokenExchange";
/// The OIDC token API version Azure DevOps documents for `SYSTEM_OIDCREQUESTURI`.
const ADO_OIDC_API_VERSION: &str = "7.1";

/// Which CI system issued the job's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiProvider {
    Github,
    Gitlab,
    AzureDevops,
}

impl CiProvider {
    pub const ALL: [CiProvider; 3] = [Self::Github, Self::Gitlab, Self::AzureDevops];

    /// `github`, `gitlab`, `azure-devops` (as `--web-identity` spells them).
    pub fn name(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Gitlab => "gitlab",
            Self::AzureDevops => "azure-devops",
        }
    }

    /// The Azure identity source this CI's token gives. Asked of the provider (not of
    /// `AzureSource`) so the Azure module need not know the CI providers.
    pub fn azure_source(self) -> AzureSource {
        match self {
            Self::Github => AzureSource::CiOidcGithub,
            Self::Gitlab => AzureSource::CiOidcGitlab,
            Self::AzureDevops => AzureSource::CiOidcAzureDevops,
        }
    }

    /// What the job must provide for its token to be had, for error messages.
    pub fn needs(self) -> &'static str {
        match self {
            Self::Github => "GitHub Actions: ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN (the job needs `permissions: id-token: write`)",
            Self::Gitlab => "GitLab CI: the ID token in GITLAB_OIDC_TOKEN (the job's `id_tokens:`), or in the variable GATELAKE_GITLAB_TOKEN_VAR names",
            Self::AzureDevops => "Azure DevOps: SYSTEM_OIDCREQUESTURI, SYSTEM_ACCESSTOKEN (map `$(System.AccessToken)` into the step's env) and the service connection id (AZURESUBSCRIPTION_SERVICE_CONNECTION_ID, set by the AzureCLI@2 task, or GATELAKE_ADO_SERVICE_CONNECTION_ID)",
        }
    }

    /// Whether this CI's token can be had in `env` (every variable it needs is set).
    pub fn available(self, env: &dyn Fn(&str) -> Option<String>) -> bool {
        let set = |name: &str| env(name).is_some_and(|v| !v.trim().is_empty());
        match self {
            Self::Github => {
                set("ACTIONS_ID_TOKEN_REQUEST_URL") && set("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
            }
            Self::Gitlab => set(&gitlab_token_var(env)),
            Self::AzureDevops => {
                set("SYSTEM_OIDCREQUESTURI")
                    && set("SYSTEM_ACCESSTOKEN")
                    && ado_service_connection(env).is_some()
            }
        }
    }

    /// The CI whose token this environment offers, first match in [`Self::ALL`]'s order.
    pub fn detect(env: &dyn Fn(&str) -> Option<String>) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.available(env))
    }

    /// What every CI needs, for the error when none is found.
    pub fn all_needs() -> String {
        Self::ALL
            .iter()
            .map(|p| p.needs())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The variable holding the GitLab ID token.
fn gitlab_token_var(env: &dyn Fn(&str) -> Option<String>) -> String {
    env(GITLAB_TOKEN_VAR_SETTING)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_GITLAB_TOKEN_VAR.to_string())
}

fn ado_service_connection(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    [ADO_SERVICE_CONNECTION_SETTING, ADO_TASK_SERVICE_CONNECTION]
        .iter()
        .filter_map(|n| env(n))
        .map(|v| v.trim().to_string())
        .find(|v| !v.is_empty())
}

/// The token source of `provider`. `audience` is asked for where the CI lets the caller
/// choose it (GitHub); GitLab's is fixed by the job's `id_tokens:` and Azure DevOps' is
/// always `api://AzureADTokenExchange`, so there a non-empty `audience` is checked instead of
/// being ignored: a mismatch fails with the setting to change.
pub fn token_source(
    provider: CiProvider,
    audience: &str,
    env: &dyn Fn(&str) -> Option<String>,
    http: reqwest::Client,
) -> Result<Arc<dyn WebIdentityTokenSource>, WebIdentityError> {
    Ok(match provider {
        CiProvider::Github => Arc::new(GithubOidcSource::from_env(env, audience, http)?),
        CiProvider::Gitlab => {
            Arc::new(GitlabIdTokenSource::from_env(env)?.expecting_audience(audience))
        }
        CiProvider::AzureDevops => {
            if !audience.is_empty() && audience != ADO_AUDIENCE {
                return Err(WebIdentityError {
                    source_name: "azure-devops",
                    message: format!(
                        "Azure DevOps issues its OIDC tokens for {ADO_AUDIENCE} only, not {audience}: drop --web-identity-audience (and list {ADO_AUDIENCE} as the IAM OIDC provider's audience)"
                    ),
                });
            }
            Arc::new(AzureDevopsOidcSource::from_env(env, http)?)
        }
    })
}

// ---------------------------------------------------------------------------------------------
// GitLab CI
// ---------------------------------------------------------------------------------------------

/// The ID token GitLab put in a job variable (`id_tokens:`). GitLab mints it when the job
/// starts and cannot be asked again, so "fresh" here means checked: an expired token fails
/// with the variable's name instead of being sent.
#[derive(Debug)]
pub struct GitlabIdTokenSource {
    variable: String,
    token: Secret,
    /// The audience the caller expects (checked, since GitLab's is set in the job's YAML).
    audience: Option<String>,
    /// Judges the token's expiry (a fake in tests).
    clock: Arc<dyn Clock>,
}

impl GitlabIdTokenSource {
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, WebIdentityError> {
        let variable = gitlab_token_var(env);
        let token = env(&variable)
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            return Err(WebIdentityError {
                source_name: "gitlab",
                message: format!(
                    "{variable} is not set: declare the ID token in the job, e.g. `id_tokens: {{ {variable}: {{ aud: api://AzureADTokenExchange }} }}`, or set {GITLAB_TOKEN_VAR_SETTING} to the variable your `id_tokens:` names"
                ),
            });
        };
        Ok(Self {
            variable,
            token: Secret::new(token),
            audience: None,
            clock: Arc::new(SystemClock),
        })
    }

    /// Check the token's `aud` against `audience` (none when empty).
    pub fn expecting_audience(mut self, audience: &str) -> Self {
        self.audience = Some(audience.to_string()).filter(|a| !a.is_empty());
        self
    }

    /// The same source on another clock (tests of expiry).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

#[async_trait]
impl WebIdentityTokenSource for GitlabIdTokenSource {
    fn name(&self) -> &'static str {
        "gitlab"
    }
    async fn token(&self) -> Result<Secret, WebIdentityError> {
        let claims = TokenClaims::of(self.token.expose());
        let Some(claims) = claims else {
            return Err(WebIdentityError {
                source_name: "gitlab",
                message: format!(
                    "{} does not hold a JWT: it must be the variable the job's `id_tokens:` declares",
                    self.variable
                ),
            });
        };
        if let Some(want) = &self.audience {
            let aud = claims.aud.clone().unwrap_or_default();
            if !aud.split(',').any(|a| a == want) {
                return Err(WebIdentityError {
                    source_name: "gitlab",
                    message: format!(
                        "the GitLab ID token in {} is for audience {aud}, but {want} was asked for: set `aud: {want}` under the job's `id_tokens: {{ {}: … }}`, or drop --web-identity-audience",
                        self.variable, self.variable
                    ),
                });
            }
        }
        if let Some(exp) = claims.expires_on() {
            if exp <= time::OffsetDateTime::from(self.clock.now()) {
                return Err(WebIdentityError {
                    source_name: "gitlab",
                    message: format!(
                        "the GitLab ID token in {} expired at {exp}: GitLab mints it when the job starts and it lives as long as the job's timeout; raise the job's `timeout:` or split the pull",
                        self.variable
                    ),
                });
            }
        }
        Ok(self.token.clone())
    }
}

// ---------------------------------------------------------------------------------------------
// Azure DevOps
// ---------------------------------------------------------------------------------------------

/// The OIDC token of an Azure DevOps service connection (workload identity federation),
/// requested afresh on every exchange.
#[derive(Debug)]
pub struct AzureDevopsOidcSource {
    request_url: Url,
    access_token: Secret,
    service_connection: String,
    http: reqwest::Client,
    retry: crate::retry::Retrier,
}

impl AzureDevopsOidcSource {
    pub fn from_env(
        env: &dyn Fn(&str) -> Option<String>,
        http: reqwest::Client,
    ) -> Result<Self, WebIdentityError> {
        let err = |m: String| WebIdentityError {
            source_name: "azure-devops",
            message: m,
        };
        let get = |n: &str| {
            env(n)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let Some(uri) = get("SYSTEM_OIDCREQUESTURI") else {
            return Err(err("SYSTEM_OIDCREQUESTURI is not set: run inside an Azure Pipelines job (it is the System.OidcRequestUri variable)".into()));
        };
        let Some(access_token) = get("SYSTEM_ACCESSTOKEN") else {
            return Err(err("SYSTEM_ACCESSTOKEN is not set: secrets are not passed to scripts by default; add `env: { SYSTEM_ACCESSTOKEN: $(System.AccessToken) }` to the step".into()));
        };
        let Some(service_connection) = ado_service_connection(env) else {
            return Err(err(format!(
                "no service connection id: run gatelake inside an AzureCLI@2 task (it sets {ADO_TASK_SERVICE_CONNECTION}) or set {ADO_SERVICE_CONNECTION_SETTING} to the connection's id"
            )));
        };
        let mut request_url = Url::parse(&uri)
            .map_err(|e| err(format!("SYSTEM_OIDCREQUESTURI is not a URL: {e}")))?;
        request_url
            .query_pairs_mut()
            .append_pair("api-version", ADO_OIDC_API_VERSION)
            .append_pair("serviceConnectionId", &service_connection);
        Ok(Self {
            request_url,
            access_token: Secret::new(access_token),
            service_connection,
            http,
            retry: crate::identity::token_endpoint_retry(),
        })
    }
}

#[async_trait]
impl WebIdentityTokenSource for AzureDevopsOidcSource {
    fn name(&self) -> &'static str {
        "azure-devops"
    }
    async fn token(&self) -> Result<Secret, WebIdentityError> {
        let err = |m: String| WebIdentityError {
            source_name: "azure-devops",
            message: m,
        };
        let shown = crate::secret::redact_url(&self.request_url);
        let answer = crate::retry::send(&self.retry, "the Azure DevOps OIDC endpoint", || {
            self.http
                .post(self.request_url.clone())
                .bearer_auth(self.access_token.expose())
                // Without it an unauthenticated call is redirected to a sign-in page (203/302)
                // instead of failing with a status that says what is wrong.
                .header("x-tfs-fedauthredirect", "Suppress")
                .header("content-type", "application/json")
                .body("")
        })
        .await
        .map_err(|e| {
            if e.is_body() || e.is_decode() {
                err(format!("reading the Azure DevOps OIDC response: {e}"))
            } else {
                err(format!(
                    "cannot reach the Azure DevOps OIDC endpoint {shown}: {}",
                    crate::report::error_chain(&e)
                ))
            }
        })?;
        let (status, body) = (answer.status, answer.body);
        if status != 200 {
            let hint = match status {
                401 | 403 | 203 | 302 => "SYSTEM_ACCESSTOKEN was refused: map `$(System.AccessToken)` into the step's env, and authorize the pipeline to use the service connection",
                400 | 404 => "the service connection was not found: check its id (AZURESUBSCRIPTION_SERVICE_CONNECTION_ID or GATELAKE_ADO_SERVICE_CONNECTION_ID) and that it uses workload identity federation",
                _ => "the Azure DevOps OIDC endpoint failed; re-run the job",
            };
            return Err(err(format!(
                "the Azure DevOps OIDC endpoint answered {status} for service connection {}: {}; {hint}",
                self.service_connection,
                crate::upstream::api_message(&body)
            )));
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Answer {
            oidc_token: Option<String>,
        }
        let token = serde_json::from_slice::<Answer>(&body)
            .ok()
            .and_then(|a| a.oidc_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                err("the Azure DevOps OIDC answer has no token (`oidcToken`): is the service connection a workload identity federation one?".into())
            })?;
        Ok(Secret::new(token))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    fn jwt(claims: serde_json::Value) -> String {
        let b = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.sig",
            b(br#"{"alg":"RS256"}"#),
            b(claims.to_string().as_bytes())
        )
    }

    #[test]
    fn detection_needs_every_variable_of_a_ci() {
        let none = env_of(&[]);
        assert_eq!(CiProvider::detect(&none), None);
        let gh = env_of(&[
            ("ACTIONS_ID_TOKEN_REQUEST_URL", "http://127.0.0.1:1/t"),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "r"),
        ]);
        assert_eq!(CiProvider::detect(&gh), Some(CiProvider::Github));
        // GitHub without the request token (no `id-token: write`) is not a usable CI token.
        let gh_half = env_of(&[("ACTIONS_ID_TOKEN_REQUEST_URL", "http://127.0.0.1:1/t")]);
        assert_eq!(CiProvider::detect(&gh_half), None);
        let gl = env_of(&[("GITLAB_OIDC_TOKEN", "x")]);
        assert_eq!(CiProvider::detect(&gl), Some(CiProvider::Gitlab));
        let gl_named = env_of(&[(GITLAB_TOKEN_VAR_SETTING, "MY_TOKEN"), ("MY_TOKEN", "x")]);
        assert_eq!(CiProvider::detect(&gl_named), Some(CiProvider::Gitlab));
        let gl_wrong = env_of(&[
            (GITLAB_TOKEN_VAR_SETTING, "MY_TOKEN"),
            ("GITLAB_OIDC_TOKEN", "x"),
        ]);
        assert_eq!(CiProvider::detect(&gl_wrong), None);
        let ado = env_of(&[
            ("SYSTEM_OIDCREQUESTURI", "http://127.0.0.1:1/oidc"),
            ("SYSTEM_ACCESSTOKEN", "a"),
            (ADO_TASK_SERVICE_CONNECTION, "c"),
        ]);
        assert_eq!(CiProvider::detect(&ado), Some(CiProvider::AzureDevops));
        let ado_no_token = env_of(&[
            ("SYSTEM_OIDCREQUESTURI", "http://127.0.0.1:1/oidc"),
            (ADO_TASK_SERVICE_CONNECTION, "c"),
        ]);
        assert_eq!(CiProvider::detect(&ado_no_token), None);
    }

    /// `auto` tries the CI token after workload identity and before managed identity, and
    /// only when the app (tenant + client id) is named; `ci-oidc` named explicitly says what
    /// is missing.
    #[tokio::test]
    async fn azure_auto_order_puts_ci_oidc_after_workload_identity() {
        use crate::identity::azure::{
            AzureAuthKind, AzureHop, AzureIdentity, AzureOptions, AzureSource, STORAGE_AUDIENCE,
        };
        let dir = tempfile::tempdir().unwrap();
        let wi_file = dir.path().join("federated-token");
        std::fs::write(&wi_file, "x").unwrap();
        let wi_file = wi_file.display().to_string();
        let app = [("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", "c")];
        let github = [
            ("ACTIONS_ID_TOKEN_REQUEST_URL", "http://127.0.0.1:9/token"),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "r"),
        ];
        let gitlab = [("GITLAB_OIDC_TOKEN", "x.y.z")];
        let ado = [
            ("SYSTEM_OIDCREQUESTURI", "http://127.0.0.1:9/oidc"),
            ("SYSTEM_ACCESSTOKEN", "a"),
            (ADO_TASK_SERVICE_CONNECTION, "conn"),
        ];
        let mi = [
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi"),
            ("IDENTITY_HEADER", "h"),
        ];
        let base = [
            ("IMDS_ENDPOINT", "http://127.0.0.1:9"),
            ("PATH", "/nonexistent"),
        ];
        let wi = [("AZURE_FEDERATED_TOKEN_FILE", wi_file.as_str())];
        type Env<'a> = Vec<(&'a str, &'a str)>;
        let rows: Vec<(Env, Option<AzureSource>)> = vec![
            (
                [&app[..], &github, &mi].concat(),
                Some(AzureSource::CiOidcGithub),
            ),
            (
                [&app[..], &gitlab, &mi].concat(),
                Some(AzureSource::CiOidcGitlab),
            ),
            (
                [&app[..], &ado].concat(),
                Some(AzureSource::CiOidcAzureDevops),
            ),
            (
                [&app[..], &wi, &github].concat(),
                Some(AzureSource::WorkloadIdentity),
            ),
            // No app named: the CI token cannot be used, managed identity is next.
            (
                [&github[..], &mi].concat(),
                Some(AzureSource::ManagedIdentityAppService),
            ),
        ];
        for (vars, expected) in rows {
            let env = env_of(&[&vars[..], &base].concat());
            let got = AzureIdentity::resolve_hop(
                &AzureOptions::default(),
                AzureHop::Storage,
                STORAGE_AUDIENCE,
                &env,
                reqwest::Client::new(),
            )
            .await
            .map(|id| id.source)
            .map_err(|e| e.to_string());
            assert_eq!(got.ok(), expected, "{vars:?}");
        }
        let explicit = AzureOptions {
            kind: AzureAuthKind::CiOidc,
            ..Default::default()
        };
        let err = AzureIdentity::resolve_hop(
            &explicit,
            AzureHop::Storage,
            STORAGE_AUDIENCE,
            &env_of(&[&app[..], &mi].concat()),
            reqwest::Client::new(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("--azure-auth ci-oidc")
                && err.contains("id-token: write")
                && err.contains("GITLAB_OIDC_TOKEN")
                && err.contains("SYSTEM_ACCESSTOKEN"),
            "{err}"
        );
        let err = AzureIdentity::resolve_hop(
            &explicit,
            AzureHop::Storage,
            STORAGE_AUDIENCE,
            &env_of(&github),
            reqwest::Client::new(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("AZURE_CLIENT_ID") && err.contains("github token is there"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn gitlab_token_is_checked_and_its_variable_named() {
        let err = GitlabIdTokenSource::from_env(&env_of(&[])).unwrap_err();
        assert!(
            err.to_string().contains("GITLAB_OIDC_TOKEN") && err.to_string().contains("id_tokens"),
            "{err}"
        );
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let good = jwt(serde_json::json!({"aud": "api://AzureADTokenExchange", "exp": now + 600}));
        let s = GitlabIdTokenSource::from_env(&env_of(&[
            (GITLAB_TOKEN_VAR_SETTING, "AZ_TOKEN"),
            ("AZ_TOKEN", &good),
        ]))
        .unwrap();
        assert_eq!(s.token().await.unwrap().expose(), good);
        let expired = jwt(serde_json::json!({"exp": now - 1}));
        let s = GitlabIdTokenSource::from_env(&env_of(&[("GITLAB_OIDC_TOKEN", &expired)])).unwrap();
        let err = s.token().await.unwrap_err().to_string();
        assert!(
            err.contains("expired") && err.contains("GITLAB_OIDC_TOKEN"),
            "{err}"
        );
        assert!(!err.contains(&expired));
        // An audience asked for explicitly is checked, not ignored.
        let s = GitlabIdTokenSource::from_env(&env_of(&[("GITLAB_OIDC_TOKEN", &good)]))
            .unwrap()
            .expecting_audience("sts.amazonaws.com");
        let err = s.token().await.unwrap_err().to_string();
        assert!(
            err.contains("api://AzureADTokenExchange") && err.contains("aud: sts.amazonaws.com"),
            "{err}"
        );
        let s = GitlabIdTokenSource::from_env(&env_of(&[("GITLAB_OIDC_TOKEN", &good)]))
            .unwrap()
            .expecting_audience("api://AzureADTokenExchange");
        assert!(s.token().await.is_ok());
        let s =
            GitlabIdTokenSource::from_env(&env_of(&[("GITLAB_OIDC_TOKEN", "not-a-jwt")])).unwrap();
        assert!(s.token().await.is_err());
    }

    /// A local Azure DevOps OIDC endpoint: checks the method, query and headers as the real
    /// one does, and answers a fresh token per call.
    async fn ado_server(
        access_token: &'static str,
    ) -> (
        String,
        Arc<std::sync::atomic::AtomicU32>,
        tokio::task::JoinHandle<()>,
    ) {
        use axum::http::{HeaderMap, StatusCode};
        use axum::response::IntoResponse;
        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = calls.clone();
        let app = axum::Router::new().route(
            "/org/_apis/oidctoken",
            axum::routing::post(
                move |q: axum::extract::Query<HashMap<String, String>>, h: HeaderMap| {
                    let counter = counter.clone();
                    async move {
                        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let bearer = h.get("authorization").and_then(|v| v.to_str().ok());
                        if bearer != Some(&format!("Bearer {access_token}"))
                            || h.get("x-tfs-fedauthredirect").is_none()
                        {
                            return (StatusCode::UNAUTHORIZED, "{}".to_string()).into_response();
                        }
                        if q.get("api-version").map(String::as_str) != Some("7.1") {
                            return (StatusCode::BAD_REQUEST, "{}".to_string()).into_response();
                        }
                        if q.get("serviceConnectionId").map(String::as_str) != Some("conn-1") {
                            return (
                                StatusCode::NOT_FOUND,
                                r#"{"message":"service connection not found"}"#.to_string(),
                            )
                                .into_response();
                        }
                        (
                            StatusCode::OK,
                            serde_json::json!({"oidcToken": format!("ado-token-{n}")}).to_string(),
                        )
                            .into_response()
                    }
                },
            ),
        );
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/org/_apis/oidctoken", tcp.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(tcp, app).await;
        });
        (url, calls, task)
    }

    #[tokio::test]
    async fn azure_devops_token_is_requested_afresh_each_time() {
        let (url, calls, task) = ado_server("sys-access-123").await;
        let env = env_of(&[
            ("SYSTEM_OIDCREQUESTURI", &url),
            ("SYSTEM_ACCESSTOKEN", "sys-access-123"),
            (ADO_TASK_SERVICE_CONNECTION, "conn-1"),
        ]);
        let s = AzureDevopsOidcSource::from_env(&env, reqwest::Client::new()).unwrap();
        assert_eq!(s.token().await.unwrap().expose(), "ado-token-0");
        assert_eq!(s.token().await.unwrap().expose(), "ado-token-1");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);

        // The explicit setting wins over the task's variable; a wrong id says which to fix.
        let env = env_of(&[
            ("SYSTEM_OIDCREQUESTURI", &url),
            ("SYSTEM_ACCESSTOKEN", "sys-access-123"),
            (ADO_SERVICE_CONNECTION_SETTING, "conn-2"),
            (ADO_TASK_SERVICE_CONNECTION, "conn-1"),
        ]);
        let s = AzureDevopsOidcSource::from_env(&env, reqwest::Client::new()).unwrap();
        let err = s.token().await.unwrap_err().to_string();
        assert!(err.contains("404") && err.contains("conn-2"), "{err}");

        let env = env_of(&[
            ("SYSTEM_OIDCREQUESTURI", &url),
            ("SYSTEM_ACCESSTOKEN", "wrong-token-456"),
            (ADO_TASK_SERVICE_CONNECTION, "conn-1"),
        ]);
        let s = AzureDevopsOidcSource::from_env(&env, reqwest::Client::new()).unwrap();
        let err = s.token().await.unwrap_err().to_string();
        assert!(
            err.contains("SYSTEM_ACCESSTOKEN") && !err.contains("wrong-token-456"),
            "{err}"
        );
        task.abort();

        let err = AzureDevopsOidcSource::from_env(
            &env_of(&[
                ("SYSTEM_OIDCREQUESTURI", &url),
                (ADO_TASK_SERVICE_CONNECTION, "c"),
            ]),
            reqwest::Client::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("$(System.AccessToken)"), "{err}");

        let env = env_of(&[
            ("SYSTEM_OIDCREQUESTURI", &url),
            ("SYSTEM_ACCESSTOKEN", "a"),
            (ADO_TASK_SERVICE_CONNECTION, "c"),
        ]);
        let err = token_source(
            CiProvider::AzureDevops,
            "sts.amazonaws.com",
            &env,
            reqwest::Client::new(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("drop --web-identity-audience"),
            "{err}"
        );
        assert!(token_source(CiProvider::AzureDevops, "", &env, reqwest::Client::new()).is_ok());
    }

    #[tokio::test]
    async fn a_gitlab_token_expires_by_the_source_clock() {
        let exp: u64 = 1_800_000_000;
        let token = jwt(serde_json::json!({"aud": "api://AzureADTokenExchange", "exp": exp}));
        let env = move |k: &str| (k == "GITLAB_OIDC_TOKEN").then(|| token.clone());
        let at = |secs: u64| {
            Arc::new(crate::clock::FakeClock::at(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
            ))
        };
        let before = GitlabIdTokenSource::from_env(&env)
            .unwrap()
            .with_clock(at(exp - 1));
        assert!(before.token().await.is_ok());
        let after = GitlabIdTokenSource::from_env(&env)
            .unwrap()
            .with_clock(at(exp));
        let err = after.token().await.unwrap_err().to_string();
        assert!(err.contains("expired"), "{err}");
    }
}
