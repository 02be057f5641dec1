//! The set-up examples run as written: `examples/aws/setup.sh` and `examples/azure/setup.sh`
//! execute with stand-ins for the `aws` and `az` CLIs (`tests/support/cloud_cli/`, which log
//! every call and check that each policy or credential file they are handed is readable JSON),
//! and the calls are checked against what the recipes' trust needs: the OIDC provider for the
//! right issuer and audiences, a role whose trust policy names that issuer, audience and the
//! subject the CI recipes' tests use, an invoke policy scoped to the API's paths, the container,
//! the federated credentials, and the AKS service account / pod wiring that matches the
//! federated credential's subject.
//!
//! The one substitution, for the callers whose policies hold placeholders a user must fill in
//! (tenant, object id): the test fills them in a copy and proves the script refuses to run
//! while they are still there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use std::path::Path;
use support::ci_oidc::{ado_issuer, ADO_SUB, GITLAB_ISSUER, GITLAB_SUB};
use support::identity::{GITHUB_ISSUER, GITHUB_SUB};
use support::recipe::{self, text};

const ACCOUNT: &str = "210987654321";

/// Run `script` (a path) with `args`, the CLI stand-ins first on `PATH`; the calls made.
fn run_setup(
    script: &Path,
    args: &[&str],
    extra_env: &[(&str, &str)],
) -> (std::process::Output, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("cli.log");
    std::fs::write(&log, "").unwrap();
    let stubs = recipe::repo().join("tests/support/cloud_cli");
    let mut cmd = recipe::hermetic("bash");
    cmd.arg(script)
        .args(args)
        .current_dir(dir.path())
        .env("PATH", recipe::path_with(&[&stubs]))
        .env("GATELAKE_TEST_CLI_LOG", &log)
        .env("GATELAKE_TEST_AWS_ACCOUNT", ACCOUNT);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let calls = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out, calls)
}

fn call<'a>(calls: &'a [Value], cli: &str, words: &[&str]) -> Vec<&'a Value> {
    calls
        .iter()
        .filter(|c| {
            c["cli"] == cli
                && words
                    .iter()
                    .enumerate()
                    .all(|(i, w)| c["args"][i].as_str() == Some(w))
        })
        .collect()
}

fn arg_after<'a>(c: &'a Value, name: &str) -> Vec<&'a str> {
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let Some(i) = args.iter().position(|a| *a == name) else {
        return vec![];
    };
    args[i + 1..]
        .iter()
        .take_while(|a| !a.starts_with("--"))
        .copied()
        .collect()
}

fn example(path: &str) -> std::path::PathBuf {
    recipe::repo().join("examples").join(path)
}

fn json_file(path: &str) -> Value {
    serde_json::from_str(&recipe::read_repo_file(path)).unwrap()
}

/// The trust policy's one statement's conditions.
fn conditions(policy: &Value) -> &serde_json::Map<String, Value> {
    policy["Statement"][0]["Condition"]["StringEquals"]
        .as_object()
        .unwrap()
}

/// `setup.sh CALLER` made the provider for `issuer` with `audiences`, a role trusting exactly
/// them and `subject`, and the scoped invoke policy.
fn assert_aws_trust(calls: &[Value], issuer: &str, audiences: &[&str], subject: &str) {
    let host = issuer.trim_start_matches("https://");
    let create = call(calls, "aws", &["iam", "create-open-id-connect-provider"]);
    assert_eq!(create.len(), 1, "{calls:#?}");
    assert_eq!(arg_after(create[0], "--url"), vec![issuer]);
    assert_eq!(arg_after(create[0], "--client-id-list"), audiences);
    let role = call(calls, "aws", &["iam", "create-role"]);
    assert_eq!(role.len(), 1);
    let trust = &role[0]["documents"]["--assume-role-policy-document"];
    assert_eq!(
        trust["Statement"][0]["Principal"]["Federated"],
        format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{host}"),
        "{trust}"
    );
    let cond = conditions(trust);
    let aud = &cond[&format!("{host}:aud")];
    let trusted: Vec<&str> = match aud {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().map(|v| v.as_str().unwrap()).collect(),
        _ => panic!("{aud}"),
    };
    assert_eq!(
        trusted, audiences,
        "the role trusts other audiences than the provider lists"
    );
    assert_eq!(cond[&format!("{host}:sub")], subject);
    let invoke = call(calls, "aws", &["iam", "put-role-policy"]);
    assert_eq!(invoke.len(), 1);
    assert_eq!(
        invoke[0]["documents"]["--policy-document"]["Statement"][0]["Resource"],
        serde_json::json!([
            "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/orders",
            "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/orders/*"
        ])
    );
}

#[test]
fn aws_setup_for_each_ci_creates_the_trust_the_ci_recipes_use() {
    for (caller, issuer, audience, subject) in [
        ("github", GITHUB_ISSUER, "sts.amazonaws.com", GITHUB_SUB),
        (
            "gitlab",
            GITLAB_ISSUER,
            "api://AzureADTokenExchange",
            GITLAB_SUB,
        ),
    ] {
        let (out, calls) = run_setup(&example("aws/setup.sh"), &[caller], &[]);
        assert!(out.status.success(), "{caller}: {}", text(&out.stderr));
        assert_aws_trust(&calls, issuer, &[audience], subject);
        assert!(text(&out.stdout).contains(&format!(
            "GATELAKE_AWS_ROLE_ARN=arn:aws:iam::{ACCOUNT}:role/gatelake-reader"
        )));
    }
}

/// Callers whose policy holds placeholders (tenant, organization, object id): refused as
/// written, naming what to fill in, with no role created; run on a filled-in copy.
#[test]
fn aws_setup_with_placeholders_refuses_then_creates_the_trust() {
    let tenant = "72f988bf-0000-4000-8000-000000000001";
    let object_id = "99999999-8888-4777-8666-555555555555";
    let org = ado_issuer().rsplit('/').next().unwrap().to_string();
    for (caller, placeholder) in [
        (
            "entra",
            "<OBJECT_ID_OF_THE_MANAGED_IDENTITY_OR_SERVICE_PRINCIPAL>",
        ),
        ("notebook", "<OBJECT_ID_OF_THE_WORKSPACE_IDENTITY>"),
        ("azure-devops", "<ORGANIZATION_ID>"),
    ] {
        let (out, calls) = run_setup(&example("aws/setup.sh"), &[caller], &[]);
        assert_eq!(out.status.code(), Some(2), "{caller}");
        assert!(
            text(&out.stderr).contains(placeholder),
            "{caller}: {}",
            text(&out.stderr)
        );
        assert!(call(&calls, "aws", &["iam", "create-role"]).is_empty());
    }
    // A filled-in copy of the folder.
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(example("aws")).unwrap() {
        let p = entry.unwrap().path();
        let body = std::fs::read_to_string(&p)
            .unwrap()
            .replace("<TENANT_ID>", tenant)
            .replace("<ORGANIZATION_ID>", &org)
            .replace(
                "<OBJECT_ID_OF_THE_MANAGED_IDENTITY_OR_SERVICE_PRINCIPAL>",
                object_id,
            )
            .replace("<OBJECT_ID_OF_THE_WORKSPACE_IDENTITY>", object_id);
        std::fs::write(copy.path().join(p.file_name().unwrap()), body).unwrap();
    }
    let script = copy.path().join("setup.sh");
    let entra_issuer = format!("https://sts.windows.net/{tenant}/");
    let (out, calls) = run_setup(&script, &["entra"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_aws_trust(
        &calls,
        &entra_issuer,
        &["api://AzureADTokenExchange"],
        object_id,
    );
    let storage = ["https://storage.azure.com", "https://storage.azure.com/"];
    let (out, calls) = run_setup(&script, &["notebook"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_aws_trust(&calls, &entra_issuer, &storage, object_id);
    let (out, calls) = run_setup(&script, &["azure-devops"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_aws_trust(
        &calls,
        &ado_issuer(),
        &["api://AzureADTokenExchange"],
        ADO_SUB,
    );
    // The tenant's provider exists already (made for `entra`): the notebook's audiences are
    // added to it rather than a second provider created.
    let arn = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/sts.windows.net/{tenant}/");
    let (out, calls) = run_setup(
        &script,
        &["notebook"],
        &[("GATELAKE_TEST_AWS_EXISTING_PROVIDERS", arn.as_str())],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(call(&calls, "aws", &["iam", "create-open-id-connect-provider"]).is_empty());
    let added: Vec<Vec<&str>> = call(
        &calls,
        "aws",
        &["iam", "add-client-id-to-open-id-connect-provider"],
    )
    .iter()
    .map(|c| arg_after(c, "--client-id"))
    .collect();
    assert_eq!(added, vec![vec![storage[0]], vec![storage[1]]]);
}

#[test]
fn azure_setup_creates_the_container_the_identity_and_its_role() {
    for (caller, subject) in [
        ("github", Some(GITHUB_SUB)),
        ("gitlab", Some(GITLAB_SUB)),
        ("aks", None),
    ] {
        let (out, calls) = run_setup(&example("azure/setup.sh"), &[caller], &[]);
        assert!(out.status.success(), "{caller}: {}", text(&out.stderr));
        let container = call(&calls, "az", &["storage", "container-rm", "create"]);
        assert_eq!(container.len(), 1, "{caller}: the container is not created");
        assert_eq!(arg_after(container[0], "--name"), vec!["raw"]);
        let fed = call(
            &calls,
            "az",
            &["ad", "app", "federated-credential", "create"],
        );
        assert_eq!(fed.len(), 1);
        let cred = &fed[0]["documents"]["--parameters"];
        assert_eq!(
            cred["audiences"],
            serde_json::json!(["api://AzureADTokenExchange"])
        );
        if let Some(subject) = subject {
            assert_eq!(cred["subject"], subject, "{caller}");
        }
        let role = call(&calls, "az", &["role", "assignment", "create"]);
        assert_eq!(role.len(), 1);
        assert_eq!(
            arg_after(role[0], "--role"),
            vec!["Storage Blob Data Contributor"]
        );
        assert!(arg_after(role[0], "--scope")[0].ends_with("/blobServices/default/containers/raw"));
        assert!(text(&out.stdout).contains("AZURE_CLIENT_ID="), "{caller}");
    }
    let (out, calls) = run_setup(
        &example("azure/setup.sh"),
        &["identity", "5e6f7a8b-0000-4000-8000-00000000b0b0"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(call(&calls, "az", &["ad", "app", "create"]).is_empty());
    let (out, _) = run_setup(&example("azure/setup.sh"), &["identity"], &[]);
    assert!(!out.status.success() && text(&out.stderr).contains("OBJECT_ID"));
    assert_eq!(
        json_file("examples/azure/federated-credential-github.json")["issuer"],
        GITHUB_ISSUER
    );
    assert_eq!(
        json_file("examples/azure/federated-credential-gitlab.json")["issuer"],
        GITLAB_ISSUER
    );
}

/// The AKS manifest's service account and pod wiring match the federated credential.
#[test]
fn kubernetes_manifest_wires_workload_identity_to_the_federated_credential() {
    let mut cmd = recipe::hermetic(recipe::python());
    cmd.arg("-c")
        .arg("import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))")
        .arg(example("kubernetes/gatelake-cronjob.yaml"));
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let docs: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let of_kind = |k: &str| docs.iter().find(|d| d["kind"] == k).unwrap().clone();
    let sa = of_kind("ServiceAccount");
    let job = of_kind("CronJob");
    let (ns, name) = (
        sa["metadata"]["namespace"].as_str().unwrap(),
        sa["metadata"]["name"].as_str().unwrap(),
    );
    let cred = json_file("examples/azure/federated-credential-aks.json");
    assert_eq!(
        cred["subject"],
        format!("system:serviceaccount:{ns}:{name}")
    );
    assert_eq!(
        cred["audiences"],
        serde_json::json!(["api://AzureADTokenExchange"])
    );
    let client_id = sa["metadata"]["annotations"]["azure.workload.identity/client-id"]
        .as_str()
        .unwrap();
    assert_eq!(client_id.len(), 36, "{client_id}");
    let pod = &job["spec"]["jobTemplate"]["spec"]["template"];
    assert_eq!(
        pod["metadata"]["labels"]["azure.workload.identity/use"],
        "true"
    );
    assert_eq!(pod["spec"]["serviceAccountName"], name);
    assert_eq!(job["metadata"]["namespace"], ns);
    // The job file the pod reads is a valid gatelake job file naming the role.
    let config = of_kind("ConfigMap");
    let toml = config["data"]["gatelake.toml"].as_str().unwrap();
    assert!(
        toml.contains("[jobs.orders]") && toml.contains("role_arn"),
        "{toml}"
    );
}

/// The CI trust policies name the subjects the CI recipes' tests present.
#[test]
fn ci_trust_policies_match_the_tested_subjects() {
    for (file, host, subject) in [
        (
            "examples/aws/trust-policy-github.json",
            "token.actions.githubusercontent.com",
            GITHUB_SUB,
        ),
        (
            "examples/aws/trust-policy-gitlab.json",
            "gitlab.com",
            GITLAB_SUB,
        ),
        (
            "examples/aws/trust-policy-azure-devops.json",
            "vstoken.dev.azure.com/<ORGANIZATION_ID>",
            ADO_SUB,
        ),
    ] {
        let policy = json_file(file);
        assert_eq!(
            conditions(&policy)[&format!("{host}:sub")],
            subject,
            "{file}"
        );
    }
}
