//! The scale-out recipes (issue 17): `examples/kubernetes/indexed-job.yaml` and
//! `examples/github/scale-out.yml`. Each is read as its engine would read it (YAML, by the test
//! bed's Python) and checked for what makes its pods or legs workers of ONE run: every pod or
//! leg runs `gatelake pull --worker` with the same `--run-key`, the Kubernetes pods with the
//! workload identity of `gatelake-cronjob.yaml` and a job file that declares partitions, the
//! GitHub legs with OIDC (`id-token: write`) and without `fail-fast` (a failed leg must not
//! cancel the ones that would finish its work).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use support::apigw::{ApiConfig, ApiGateway};
use support::recipe::{self, text};
use support::run::{gatelake, s};

/// The YAML documents of an example, as JSON (PyYAML from the test bed's venv).
fn yaml_docs(example: &str) -> Vec<Value> {
    let mut cmd = recipe::hermetic(recipe::python());
    cmd.arg("-c")
        .arg("import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))")
        .arg(recipe::repo().join(example));
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{example}: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in the manifest"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// The value after `flag` in `args`.
fn after<'a>(args: &'a [String], flag: &str) -> &'a str {
    let i = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("{flag} missing from {args:?}"));
    &args[i + 1]
}

#[test]
fn kubernetes_indexed_job_pods_are_workers_of_one_run_with_workload_identity() {
    let docs = yaml_docs("examples/kubernetes/indexed-job.yaml");
    let job = of_kind(&docs, "Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["completions"], spec["parallelism"]);
    assert!(
        spec["backoffLimit"].as_u64().unwrap() >= 1,
        "pods are never replaced"
    );
    // The identity of the CronJob recipe (whose wiring tests/recipes_setup.rs checks against
    // the federated credential): the same service account and namespace, the webhook's label.
    let cron = yaml_docs("examples/kubernetes/gatelake-cronjob.yaml");
    let sa = of_kind(&cron, "ServiceAccount");
    assert_eq!(job["metadata"]["namespace"], sa["metadata"]["namespace"]);
    let pod = &spec["template"];
    assert_eq!(pod["spec"]["serviceAccountName"], sa["metadata"]["name"]);
    assert_eq!(
        pod["metadata"]["labels"]["azure.workload.identity/use"],
        "true"
    );
    assert_eq!(pod["spec"]["restartPolicy"], "Never");
    let container = &pod["spec"]["containers"][0];
    let args = strings(&container["args"]);
    assert_eq!(args[0], "pull");
    assert!(args.contains(&"--worker".to_string()), "{args:?}");
    // One run key for every pod of the Job, replacements included: the Job's uid.
    assert_eq!(after(&args, "--run-key"), "$(RUN_KEY)");
    let env = container["env"].as_array().unwrap();
    let run_key = env.iter().find(|e| e["name"] == "RUN_KEY").unwrap();
    assert_eq!(
        run_key["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.labels['batch.kubernetes.io/controller-uid']"
    );
    // The job file the pods read declares the partitions of the job they pull.
    let config = of_kind(&docs, "ConfigMap");
    let toml = config["data"]["gatelake.toml"].as_str().unwrap();
    let job_name = after(&args, "--job");
    assert!(toml.contains(&format!("[jobs.{job_name}]")), "{toml}");
    assert!(
        toml.contains(&format!("[jobs.{job_name}.partitions]")),
        "{toml}"
    );
    let mounted = &pod["spec"]["volumes"][0]["configMap"]["name"];
    assert_eq!(mounted, &config["metadata"]["name"]);
}

#[test]
fn github_scale_out_legs_are_workers_of_one_run_with_oidc() {
    let docs = yaml_docs("examples/github/scale-out.yml");
    let wf = &docs[0];
    assert_eq!(wf["permissions"]["id-token"], "write");
    let jobs = wf["jobs"].as_object().unwrap();
    assert_eq!(jobs.len(), 1, "one job of N legs");
    let job = jobs.values().next().unwrap();
    assert_eq!(job["strategy"]["fail-fast"], false);
    let legs = job["strategy"]["matrix"]["worker"].as_array().unwrap();
    assert!(legs.len() >= 2, "{legs:?}");
    let steps = job["steps"].as_array().unwrap();
    let pull = steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .find(|r| r.contains("gatelake pull"))
        .unwrap();
    assert!(pull.contains("--worker"), "{pull}");
    // The workflow run's id, the same in every leg and every attempt; no `${{ }}` expression.
    assert!(pull.contains("--run-key \"gh-$GITHUB_RUN_ID\""), "{pull}");
    assert!(!pull.contains("${{"), "{pull}");
    assert_eq!(job["env"]["GATELAKE_AZURE_AUTH"], "ci-oidc");
    assert_eq!(job["env"]["GATELAKE_WEB_IDENTITY"], "github");
}

/// `gatelake status` on a real run: a partitioned pull whose third range hits a page that
/// cannot be read (`--on-bad-page fail`) ends without `_SUCCESS` and exit 4; status, with the
/// pull's own flags, then shows 4 partitions done with their rows, the failed one with its
/// error, in JSON and in text, and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_done_and_failed_partitions_of_a_real_run() {
    let api = ApiGateway::start(ApiConfig {
        records: 100,
        page_size: 10,
        malformed_page: Some(4),
        ..ApiConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("lake/orders");
    let flags = s(&[
        "--url",
        &api.url("/prod/offset"),
        "--paginate",
        "offset",
        "--page-size",
        "10",
        "--records",
        "items",
        "--total-path",
        "total",
        "--ranges",
        "5",
        "--dest",
        dest.to_str().unwrap(),
        "--output",
        "json",
    ]);
    let pull = gatelake([s(&["pull"]), flags.clone()].concat(), vec![]).await;
    assert_eq!(pull.status.code(), Some(4), "{}", text(&pull.stderr));
    let status = gatelake([s(&["status"]), flags.clone()].concat(), vec![]).await;
    assert!(status.status.success(), "{}", text(&status.stderr));
    let v: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["partitions_total"], 5, "{v}");
    assert_eq!(v["counts"]["done"], 4, "{v}");
    assert_eq!(v["counts"]["failed"], 1, "{v}");
    assert_eq!(v["rows_done"], 80, "{v}");
    let failed = v["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["state"] == "failed")
        .unwrap();
    assert_eq!(failed["index"], 2, "{v}");
    assert!(!failed["error"].as_str().unwrap().is_empty(), "{v}");
    assert_eq!(v["run"]["status"], "running", "{v}");
    // Text: the counts, the failed partition with its error, and what to do about it.
    let mut text_flags = flags.clone();
    text_flags.truncate(flags.len() - 2);
    let out = gatelake([s(&["status"]), text_flags].concat(), vec![]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("4 done, 0 working, 0 waiting, 1 failed"),
        "{shown}"
    );
    assert!(shown.contains(failed["id"].as_str().unwrap()), "{shown}");
    assert!(shown.contains("error: "), "{shown}");
    assert!(shown.contains("retries the failed partitions"), "{shown}");
    // No partitioned run at another destination: said, and still exit 0.
    let mut elsewhere = flags.clone();
    let at = elsewhere.iter().position(|a| a == "--dest").unwrap();
    elsewhere[at + 1] = dir.path().join("lake/none").display().to_string();
    let out = gatelake([s(&["status"]), elsewhere].concat(), vec![]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["run"].is_null(), "{v}");
}
