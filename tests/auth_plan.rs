//! `gatelake auth plan`, the real binary: the trust policy it prints is evaluated — by a
//! small condition evaluator written here, with IAM's rules for the parts a web-identity
//! trust policy uses — against the claims of the token gatelake itself obtained from the test
//! identity provider (GitHub Actions' OIDC endpoint stand-in): it must accept that token and
//! refuse a token for another subject, audience or issuer. The other forms (Markdown, the
//! commands) carry the same documents; what cannot be learnt is listed and exits 3.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{json, Value};
use support::identity::{claims, jwt, now, GithubOidc, GITHUB_ISSUER, GITHUB_SUB};
use support::run::{gatelake, s, text};

const ROLE: &str = "arn:aws:iam::123456789012:role/gatelake-orders";
const API: &str = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/orders";

// ---------------------------------------------------------------------------------------------
// A trust-policy evaluator: Allow statements for sts:AssumeRoleWithWebIdentity whose federated
// principal is the token's issuer, every condition (StringEquals, StringLike) holding.
// ---------------------------------------------------------------------------------------------

/// IAM's `StringLike`: `*` any run of characters, `?` one character; the rest literal.
fn like(pattern: &str, value: &str) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    // Classic wildcard matching with backtracking over the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0usize, 0usize, None::<usize>, 0usize);
    while j < v.len() {
        if i < p.len() && (p[i] == '?' || p[i] == v[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// The values of a claim (`aud` may be a list).
fn claim_values(token: &Value, claim: &str) -> Vec<String> {
    match &token[claim] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether `policy` lets a web identity token with `token`'s claims assume the role.
fn allows(policy: &Value, token: &Value) -> bool {
    let iss = token["iss"].as_str().unwrap_or_default();
    let host = iss.strip_prefix("https://").unwrap_or(iss);
    policy["Statement"].as_array().unwrap().iter().any(|st| {
        let action_ok = match &st["Action"] {
            Value::String(a) => a == "sts:AssumeRoleWithWebIdentity",
            Value::Array(a) => a.iter().any(|x| x == "sts:AssumeRoleWithWebIdentity"),
            _ => false,
        };
        let principal = st["Principal"]["Federated"].as_str().unwrap_or_default();
        let principal_ok = principal.ends_with(&format!(":oidc-provider/{host}"));
        let conditions_ok = st["Condition"]
            .as_object()
            .unwrap()
            .iter()
            .all(|(op, keys)| {
                keys.as_object().unwrap().iter().all(|(key, want)| {
                    let Some((key_host, claim)) = key.rsplit_once(':') else {
                        return false;
                    };
                    if key_host != host {
                        return false; // a condition on another provider's key never holds
                    }
                    let wants: Vec<String> = match want {
                        Value::String(w) => vec![w.clone()],
                        Value::Array(a) => {
                            a.iter().map(|x| x.as_str().unwrap().to_string()).collect()
                        }
                        _ => return false,
                    };
                    let have = claim_values(token, claim);
                    have.iter().any(|h| {
                        wants.iter().any(|w| match op.as_str() {
                            "StringEquals" => h == w,
                            "StringLike" => like(w, h),
                            other => panic!("the evaluator does not know {other}"),
                        })
                    })
                })
            });
        st["Effect"] == "Allow" && action_ok && principal_ok && conditions_ok
    })
}

#[test]
fn the_evaluator_itself() {
    assert!(like(
        "repo:a/b:ref:refs/heads/*",
        "repo:a/b:ref:refs/heads/main"
    ));
    assert!(!like(
        "repo:a/b:ref:refs/heads/*",
        "repo:a/c:ref:refs/heads/main"
    ));
    assert!(like("a?c", "abc") && !like("a?c", "abbc") && like("*", ""));
    let policy = json!({"Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/issuer.test"},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {"issuer.test:aud": "x", "issuer.test:sub": "me"}}
    }]});
    let token = json!({"iss": "https://issuer.test", "aud": ["y", "x"], "sub": "me"});
    assert!(allows(&policy, &token));
    assert!(!allows(
        &policy,
        &json!({"iss": "https://issuer.test", "aud": "x", "sub": "you"})
    ));
    assert!(!allows(
        &policy,
        &json!({"iss": "https://other.test", "aud": "x", "sub": "me"})
    ));
    let mut deny = policy.clone();
    deny["Statement"][0]["Effect"] = json!("Deny");
    assert!(!allows(&deny, &token));
}

// ---------------------------------------------------------------------------------------------
// The binary
// ---------------------------------------------------------------------------------------------

fn github_env(gh: &GithubOidc) -> Vec<(String, String)> {
    vec![
        ("ACTIONS_ID_TOKEN_REQUEST_URL".into(), gh.request_url()),
        (
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN".into(),
            gh.request_token.clone(),
        ),
    ]
}

fn plan_args(dest: &str, extra: &[&str]) -> Vec<String> {
    let mut args = s(&[
        "auth",
        "plan",
        "--url",
        API,
        "--api-auth",
        "iam",
        "--aws-role-arn",
        ROLE,
        "--web-identity",
        "github",
        "--dest",
        dest,
    ]);
    args.extend(s(extra));
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trust_policy_accepts_the_token_gatelake_sends_and_refuses_another_subject() {
    let gh = GithubOidc::start().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("lake");
    let out = gatelake(
        plan_args(dest.to_str().unwrap(), &["--output", "json"]),
        github_env(&gh),
    )
    .await;
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["status"], "planned");
    assert_eq!(plan["unresolved"], json!([]));

    // The token the plan read is the one a pull would send: asked for STS's audience.
    let issued = gh.issued();
    assert_eq!(issued.len(), 1, "the plan asks for one token");
    let sent = claims(&issued[0]);
    assert_eq!(sent["aud"], "sts.amazonaws.com");
    let policy = &plan["documents"]["aws_trust_policy"];
    assert!(
        allows(policy, &sent),
        "the plan's policy refuses the job's own token:\n{policy:#}"
    );

    // Another subject, audience or issuer: refused.
    let t = now();
    let other = |iss: &str, aud: &str, sub: &str| {
        claims(&jwt(
            &json!({"iss": iss, "aud": aud, "sub": sub, "iat": t, "exp": t + 300}),
        ))
    };
    assert!(allows(
        policy,
        &other(GITHUB_ISSUER, "sts.amazonaws.com", GITHUB_SUB)
    ));
    assert!(!allows(
        policy,
        &other(
            GITHUB_ISSUER,
            "sts.amazonaws.com",
            "repo:acme/other:ref:refs/heads/main"
        )
    ));
    assert!(!allows(
        policy,
        &other(
            GITHUB_ISSUER,
            "sts.amazonaws.com",
            "repo:acme/data-jobs:ref:refs/heads/dev"
        )
    ));
    assert!(!allows(
        policy,
        &other(GITHUB_ISSUER, "api://AzureADTokenExchange", GITHUB_SUB)
    ));
    assert!(!allows(
        policy,
        &other(
            "https://gitlab.example.test",
            "sts.amazonaws.com",
            GITHUB_SUB
        )
    ));

    // The provider, and the one method and path the role may invoke.
    let docs = &plan["documents"];
    assert_eq!(docs["aws_oidc_provider"]["Url"], GITHUB_ISSUER);
    assert_eq!(
        docs["aws_oidc_provider"]["ClientIDList"],
        json!(["sts.amazonaws.com"])
    );
    assert_eq!(
        policy["Statement"][0]["Principal"]["Federated"],
        "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    );
    assert_eq!(
        docs["aws_invoke_policy"]["Statement"][0]["Resource"],
        "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/orders"
    );
    // A local destination needs no role assignment; nothing was written there.
    assert!(docs.get("azure_role_assignment").is_none());
    assert!(!dest.exists());
    // The token is never printed, nor any part of it.
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    for part in issued[0].split('.') {
        assert!(!all.contains(part), "a part of the token was printed");
    }
}

/// GitLab CI puts its ID token in a variable: the plan reads that very token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gitlab_id_token_is_trusted_by_its_project_and_branch_only() {
    use support::ci_oidc::{gitlab_id_token, GITLAB_ISSUER, GITLAB_SUB};
    let dir = tempfile::tempdir().unwrap();
    let token = gitlab_id_token("sts.amazonaws.com");
    let out = gatelake(
        s(&[
            "auth",
            "plan",
            "--url",
            API,
            "--api-auth",
            "iam",
            "--aws-role-arn",
            ROLE,
            "--web-identity",
            "gitlab",
            "--web-identity-audience",
            "sts.amazonaws.com",
            "--dest",
            dir.path().join("lake").to_str().unwrap(),
            "--output",
            "json",
        ]),
        vec![("GITLAB_OIDC_TOKEN".into(), token.clone())],
    )
    .await;
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let policy = &plan["documents"]["aws_trust_policy"];
    assert!(allows(policy, &claims(&token)), "{policy:#}");
    let other = json!({"iss": GITLAB_ISSUER, "aud": "sts.amazonaws.com",
        "sub": "project_path:acme/other:ref_type:branch:ref:main"});
    assert!(!allows(policy, &other));
    let branch = json!({"iss": GITLAB_ISSUER, "aud": "sts.amazonaws.com",
        "sub": GITLAB_SUB.replace(":main", ":dev")});
    assert!(!allows(policy, &branch));
    assert!(!text(&out.stdout).contains(token.split('.').nth(1).unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markdown_and_commands_carry_the_same_documents() {
    let gh = GithubOidc::start().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("lake");
    let dest = dest.to_str().unwrap();
    let json_out = gatelake(plan_args(dest, &["--output", "json"]), github_env(&gh)).await;
    let plan: Value = serde_json::from_slice(&json_out.stdout).unwrap();
    let md = gatelake(plan_args(dest, &[]), github_env(&gh)).await;
    assert!(md.status.success(), "{}", text(&md.stderr));
    let md = text(&md.stdout);
    assert!(
        md.starts_with("# Trust boundaries of gatelake job `orders`"),
        "{md}"
    );
    // Every JSON block of the document parses, and the trust policy is the JSON form's.
    let blocks: Vec<Value> = md
        .split("```json\n")
        .skip(1)
        .map(|b| serde_json::from_str(b.split_once("```").unwrap().0).unwrap())
        .collect();
    assert!(
        blocks.contains(&plan["documents"]["aws_trust_policy"]),
        "{md}"
    );
    assert!(
        blocks.contains(&plan["documents"]["aws_invoke_policy"]),
        "{md}"
    );

    let cmds = gatelake(
        plan_args(dest, &["--plan-format", "commands"]),
        github_env(&gh),
    )
    .await;
    assert!(cmds.status.success(), "{}", text(&cmds.stderr));
    let script = text(&cmds.stdout);
    assert!(script.contains("aws iam create-open-id-connect-provider --url 'https://token.actions.githubusercontent.com' --client-id-list 'sts.amazonaws.com'"), "{script}");
    assert!(
        script.contains("aws iam create-role --role-name 'gatelake-orders'"),
        "{script}"
    );
    assert!(script.contains("aws iam put-role-policy"), "{script}");
    assert_eq!(
        md.matches("aws iam create-role").count(),
        1,
        "the document holds the commands"
    );
    // A valid shell script whose trust-policy file is the JSON form's document.
    let file = dir.path().join("plan.sh");
    std::fs::write(&file, &script).unwrap();
    let syntax = std::process::Command::new("sh")
        .arg("-n")
        .arg(&file)
        .output()
        .unwrap();
    assert!(syntax.status.success(), "{}", text(&syntax.stderr));
    let written = script
        .split_once("cat > trust-policy.json <<'JSON'\n")
        .unwrap()
        .1
        .split_once("\nJSON")
        .unwrap()
        .0;
    let written: Value = serde_json::from_str(written).unwrap();
    assert_eq!(written, plan["documents"]["aws_trust_policy"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_learnt_is_listed_and_exits_3_and_flags_supply_it() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("lake");
    let dest = dest.to_str().unwrap();
    // No GitHub token here: the issuer and subject are unknown.
    let out = gatelake(plan_args(dest, &["--output", "json"]), vec![]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["status"], "incomplete");
    let why = plan["unresolved"].to_string();
    // No policy with an empty issuer or subject is offered for approval.
    assert!(
        plan["documents"].get("aws_trust_policy").is_none(),
        "{plan}"
    );
    assert!(
        why.contains("--trust-subject") && why.contains("github"),
        "{why}"
    );
    assert!(
        text(&out.stderr).contains("the plan is incomplete"),
        "{}",
        text(&out.stderr)
    );

    // Given by flags, as a pattern: every branch of the repository, and nothing else.
    let out = gatelake(
        plan_args(
            dest,
            &[
                "--output",
                "json",
                "--trust-issuer",
                GITHUB_ISSUER,
                "--trust-subject",
                "repo:acme/data-jobs:ref:refs/heads/*",
            ],
        ),
        vec![],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let policy = &plan["documents"]["aws_trust_policy"];
    let t = now();
    let token = |sub: &str| json!({"iss": GITHUB_ISSUER, "aud": "sts.amazonaws.com", "sub": sub, "exp": t + 60});
    assert!(allows(policy, &token(GITHUB_SUB)));
    assert!(allows(
        policy,
        &token("repo:acme/data-jobs:ref:refs/heads/release")
    ));
    assert!(!allows(policy, &token("repo:acme/data-jobs:pull_request")));
    assert!(!allows(
        policy,
        &token("repo:acme/other:ref:refs/heads/main")
    ));

    // An API behind a custom domain needs --api-arn; a malformed one is a usage error.
    let custom = |extra: &[&str]| {
        let mut a = s(&[
            "auth",
            "plan",
            "--url",
            "https://api.example.test/v1/orders",
            "--api-auth",
            "iam",
            "--aws-role-arn",
            ROLE,
            "--web-identity",
            "github",
            "--dest",
            dest,
            "--output",
            "json",
            "--trust-issuer",
            GITHUB_ISSUER,
            "--trust-subject",
            GITHUB_SUB,
            "--region",
            "eu-west-1",
        ]);
        a.extend(s(extra));
        a
    };
    let out = gatelake(custom(&[]), vec![]).await;
    assert_eq!(out.status.code(), Some(3));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        plan["unresolved"].to_string().contains("--api-arn"),
        "{plan}"
    );
    let out = gatelake(
        custom(&[
            "--api-arn",
            "arn:aws:execute-api:eu-west-1:210987654321:xyz789/live",
        ]),
        vec![],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        plan["documents"]["aws_invoke_policy"]["Statement"][0]["Resource"],
        "arn:aws:execute-api:eu-west-1:210987654321:xyz789/live/GET/v1/orders"
    );
    let out = gatelake(
        custom(&["--api-arn", "arn:aws:execute-api:eu-west-1:1:*"]),
        vec![],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--api-arn"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_azure_destination_gets_a_container_scoped_role_assignment() {
    let dir = tempfile::tempdir().unwrap();
    let out = gatelake(
        s(&[
            "auth",
            "plan",
            "--dest",
            "abfss://raw@lakeacct.dfs.core.windows.net/landing",
            "--url",
            API,
            "--principal-id",
            "11111111-2222-3333-4444-555555555555",
            "--output",
            "json",
        ]),
        vec![],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ra = &plan["documents"]["azure_role_assignment"];
    assert_eq!(ra["principalId"], "11111111-2222-3333-4444-555555555555");
    assert_eq!(
        ra["roleDefinitionId"],
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
    );
    assert_eq!(
        ra["scope"],
        "$STORAGE_ACCOUNT_ID/blobServices/default/containers/raw"
    );
    assert_eq!(plan["storage"]["prefix"], "landing/orders");
    let commands = plan["commands"].to_string();
    assert!(
        commands.contains("az storage account show --name 'lakeacct'"),
        "{commands}"
    );
    drop(dir);

    // A storage key is a standing secret: the plan says so and exits 3.
    let out = gatelake(
        s(&[
            "auth",
            "plan",
            "--dest",
            "abfss://raw@lakeacct.dfs.core.windows.net/landing",
            "--azure-auth-storage",
            "key",
            "--output",
            "json",
        ]),
        vec![
            ("AZURE_STORAGE_ACCOUNT".into(), "lakeacct".into()),
            ("AZURE_STORAGE_KEY".into(), "a2V5".into()),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("standing secret"),
        "{}",
        text(&out.stderr)
    );
}

/// Without --principal-id the writer's object id is read from its own storage token (here
/// one handed in by file, as a notebook cell would), and that token is never printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writers_object_id_comes_from_its_storage_token() {
    let dir = tempfile::tempdir().unwrap();
    let t = now();
    let token = jwt(&json!({
        "aud": "https://storage.azure.com", "iss": "https://sts.windows.net/tenant-1/",
        "tid": "tenant-1", "oid": "9f0e5d1c-0000-4000-8000-00000000abcd",
        "iat": t, "nbf": t - 5, "exp": t + 3600,
    }));
    let file = dir.path().join("storage.jwt");
    std::fs::write(&file, &token).unwrap();
    let out = gatelake(
        s(&[
            "auth",
            "plan",
            "--url",
            API,
            "--dest",
            "abfss://raw@lakeacct.dfs.core.windows.net/landing",
            "--azure-token-file",
            file.to_str().unwrap(),
            "--output",
            "json",
        ]),
        vec![],
    )
    .await;
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        plan["documents"]["azure_role_assignment"]["principalId"],
        "9f0e5d1c-0000-4000-8000-00000000abcd"
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        !all.contains(token.split('.').nth(1).unwrap()),
        "the token was printed"
    );
}

/// The README's trust-plan block, run as written: the example API and lake URLs are swapped
/// for loopback ones (the plan reads them and sends nothing to either), with the API's ARN in
/// `GATELAKE_API_ARN` as an API behind a custom domain would need, so no amazonaws.com or
/// windows.net host is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_auth_plan() {
    let gh = GithubOidc::start().await;
    let readme = support::recipe::read_repo_file("README.md");
    let marker = "<!-- readme-test: readme_auth_plan -->";
    let after = readme
        .split_once(marker)
        .expect("the README marks its plan block")
        .1;
    let body = after
        .split_once("```sh\n")
        .unwrap()
        .1
        .split_once("```")
        .unwrap()
        .0;
    let script = support::recipe::substitute(
        body,
        &[
            (&format!("API={API}"), "API=http://127.0.0.1:9/prod/orders"),
            (
                "LAKE=abfss://raw@mylake.dfs.core.windows.net/landing",
                "LAKE=http://127.0.0.1:10000/devstoreaccount1/raw/landing",
            ),
        ],
    );
    assert!(
        !script.contains("amazonaws.com") && !script.contains("windows.net"),
        "{script}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("block.sh");
    std::fs::write(&file, &script).unwrap();
    let mut bash = support::recipe::hermetic("bash");
    bash.current_dir(dir.path())
        .args(["-euo", "pipefail"])
        .arg(&file)
        .env(
            "PATH",
            support::recipe::path_with(&[&support::recipe::bin_dir(dir.path())]),
        )
        .env(
            "GATELAKE_API_ARN",
            "arn:aws:execute-api:us-east-1:123456789012:abc123/prod",
        )
        .env("WRITER_OBJECT_ID", "11111111-2222-3333-4444-555555555555")
        // The example URL names its region; the loopback one does not.
        .env("AWS_REGION", "us-east-1")
        .envs(github_env(&gh));
    let out = support::recipe::run(bash).await;
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let md = std::fs::read_to_string(dir.path().join("trust-boundaries.md")).unwrap();
    assert!(
        md.contains("arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/orders"),
        "{md}"
    );
    assert!(md.contains(GITHUB_SUB), "{md}");
    assert!(md.contains("container `raw`"), "{md}");
    let script = std::fs::read_to_string(dir.path().join("trust-plan.sh")).unwrap();
    assert!(script.starts_with("#!/bin/sh"), "{script}");
    assert!(
        script.contains(
            "az role assignment create --assignee-object-id '11111111-2222-3333-4444-555555555555'"
        ),
        "{script}"
    );
}

/// A plan whose trust is given by flags (no token needed) with `extra` flags, in `form`.
async fn flagged_plan(dest: &str, extra: &[&str], form: &str) -> std::process::Output {
    let mut args = s(&[
        "--plan-format",
        form,
        "--trust-issuer",
        GITHUB_ISSUER,
        "--trust-subject",
        "repo:acme/data-jobs:ref:refs/heads/main",
    ]);
    args.extend(s(extra));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    gatelake(plan_args(dest, &args), vec![]).await
}

/// The JSON document between `cat > FILE <<'JSON'` and `JSON` in a commands script.
fn written(script: &str, file: &str) -> Value {
    let body = script
        .split_once(&format!("cat > {file} <<'JSON'\n"))
        .unwrap_or_else(|| panic!("no {file} in:\n{script}"))
        .1
        .split_once("\nJSON")
        .unwrap()
        .0;
    serde_json::from_str(body).unwrap()
}

#[tokio::test]
async fn a_job_paged_by_post_may_invoke_post_on_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("lake");
    let dest = dest.to_str().unwrap();
    let post = ["--method", "POST", "--body", r#"{"q":"open"}"#];
    let out = flagged_plan(dest, &post, "json").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["api"]["method"], "POST");
    let arn = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/POST/orders";
    assert_eq!(
        plan["documents"]["aws_invoke_policy"]["Statement"][0]["Resource"],
        arn
    );
    let md = text(&flagged_plan(dest, &post, "markdown").await.stdout);
    assert!(md.contains(arn) && md.contains("One method (POST)"), "{md}");
    assert!(!md.contains("/prod/GET/"), "{md}");
    // A GET job stays GET.
    let out = flagged_plan(dest, &[], "json").await;
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["api"]["method"], "GET");
}

/// A job that reads s3:// objects the API names gets s3:GetObject (and s3:ListBucket) on its
/// --allow-bucket under --object-prefix, in every form; a job that reads none gets no S3
/// statement, and neither does one whose objects come as presigned URLs.
#[tokio::test]
async fn a_job_reading_objects_may_read_its_bucket_prefix_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("lake");
    let dest = dest.to_str().unwrap();
    let objects = [
        "--objects-path",
        "files",
        "--object-uri-field",
        "s3_uri",
        "--allow-bucket",
        "acme-exports",
        "--object-prefix",
        "orders/",
    ];
    let out = flagged_plan(dest, &objects, "json").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let policy = &plan["documents"]["aws_object_read_policy"];
    assert_eq!(
        policy["Statement"],
        json!([
            {
                "Sid": "GatelakeReadObjects",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": ["arn:aws:s3:::acme-exports/orders/*"],
            },
            {
                "Sid": "GatelakeListObjects",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": ["arn:aws:s3:::acme-exports"],
                "Condition": { "StringLike": { "s3:prefix": "orders/*" } },
            },
        ]),
        "{plan:#}"
    );

    let out = flagged_plan(dest, &objects, "commands").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let script = text(&out.stdout);
    assert_eq!(&written(&script, "object-read-policy.json"), policy);
    assert!(script.contains("aws iam put-role-policy --role-name 'gatelake-orders' --policy-name 'gatelake-orders-read-objects' --policy-document file://object-read-policy.json"), "{script}");

    let out = flagged_plan(dest, &objects, "markdown").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let md = text(&out.stdout);
    assert!(
        md.contains("| AWS → S3 | the role | `s3:GetObject`, `s3:ListBucket` | `s3://acme-exports/orders/*` |"),
        "{md}"
    );
    let blocks: Vec<Value> = md
        .split("```json\n")
        .skip(1)
        .map(|b| serde_json::from_str(b.split_once("```").unwrap().0).unwrap())
        .collect();
    assert!(blocks.contains(policy), "{md}");

    // Records, or objects behind presigned URLs: no S3 permission at all.
    let presigned = ["--objects-path", "files", "--object-url-field", "url"];
    for extra in [&[][..], &presigned[..]] {
        let out = flagged_plan(dest, extra, "json").await;
        assert!(out.status.success(), "{extra:?}: {}", text(&out.stderr));
        let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            !plan["documents"].to_string().contains("s3:"),
            "{extra:?}: {plan:#}"
        );
        assert_eq!(plan["objects"], Value::Null);
    }

    // s3:// objects from any bucket cannot be granted: the plan says to bound them.
    let out = flagged_plan(dest, &objects[..4], "json").await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        plan["unresolved"].to_string().contains("--allow-bucket"),
        "{plan:#}"
    );
    assert!(plan["documents"].get("aws_object_read_policy").is_none());
}
