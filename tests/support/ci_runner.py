"""A stand-in CI runner: runs the shell steps of a GitHub Actions workflow, a GitLab CI job or an
Azure Pipelines job as written, with the environment the real runner gives them.

    ci_runner.py github|gitlab|azure-devops PIPELINE_FILE

The working directory is the job's workspace (what the checkout would hold). Everything the
real runner injects comes from GATELAKE_TEST_CI_* variables the Rust test sets (the loopback
stand-ins of tests/support/identity.rs and tests/support/ci_oidc.rs):

- GitHub: `run:` steps in `bash --noprofile --norc -eo pipefail`, with the workflow, job and
  step `env:` merged; a job with a `strategy.matrix` of plain lists runs every leg at once, each
  in its own copy of the workspace (`../leg-N`), GITHUB_RUN_ID the same for all
  (GATELAKE_TEST_CI_GITHUB_RUN_ID); ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN are given only when the workflow or
  job grants `permissions: id-token: write` (as GitHub does); GITHUB_ENV / GITHUB_PATH files
  are honoured. `uses: actions/checkout@…` is a no-op (the workspace is prepared); any other
  `uses:` fails.
- GitLab: the job's `before_script` + `script` lines in one `bash -eo pipefail` shell, with
  global and job `variables:`; each `id_tokens:` entry becomes a variable holding an ID token
  minted for its `aud` by the GitLab stand-in (GATELAKE_TEST_CI_GITLAB_ID_TOKEN_URL).
- Azure DevOps: `script:`/`bash:` steps and `AzureCLI@2` tasks (scriptType bash, inline
  script); `$(Name)` macros are expanded from `variables:` and System.AccessToken; every step
  gets SYSTEM_OIDCREQUESTURI; AzureCLI@2 adds AZURESUBSCRIPTION_SERVICE_CONNECTION_ID,
  _CLIENT_ID and _TENANT_ID for its service connection (and servicePrincipalId/tenantId with
  addSpnToEnvironment). The task's own `az login` is not run: no recipe step uses `az`.

`${{ … }}` expressions are not evaluated: a recipe using one fails here, so the test says so.
"""

import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

try:
    import yaml
except ImportError:  # moto[server] installs PyYAML into the test bed's venv
    sys.exit("ci_runner.py needs PyYAML (installed with moto[server] by scripts/testbed.sh)")


def fail(message):
    sys.exit(f"ci_runner: {message}")


def runner_env():
    """The machine environment the runner itself gives every step (PATH, HOME, CA, stand-in
    endpoints), without the GATELAKE_TEST_CI_* control variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GATELAKE_TEST_CI_")}


def stringify(env):
    out = {}
    for k, v in (env or {}).items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        v = str(v)
        if "${{" in v:
            fail(f"expression in env {k}: {v} (not evaluated by this stand-in)")
        out[str(k)] = v
    return out


def run_bash(script, env, label, shell=("bash", "--noprofile", "--norc", "-eo", "pipefail"), cwd=None):
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        print(f"ci_runner: --- {label}", file=sys.stderr, flush=True)
        done = subprocess.run([*shell, path], env=env, cwd=cwd)
    finally:
        os.remove(path)
    if done.returncode != 0:
        print(f"ci_runner: step '{label}' failed with exit code {done.returncode}", file=sys.stderr)
        sys.exit(done.returncode)


# --------------------------------------------------------------------------------------------
# GitHub Actions
# --------------------------------------------------------------------------------------------

def grants_id_token(permissions):
    return isinstance(permissions, dict) and permissions.get("id-token") == "write"


def matrix_legs(strategy):
    """The legs of `strategy.matrix` (every combination of its lists, in order), or one leg
    with no values when there is no matrix. `include`/`exclude` are not stood in for."""
    matrix = (strategy or {}).get("matrix")
    if not matrix:
        return [{}]
    if not isinstance(matrix, dict) or "include" in matrix or "exclude" in matrix:
        fail(f"only a matrix of plain lists is stood in for: {json.dumps(matrix)}")
    legs = [{}]
    for key, values in matrix.items():
        if not isinstance(values, list):
            fail(f"matrix.{key} is not a list")
        legs = [dict(leg, **{key: v}) for leg in legs for v in values]
    return legs


def github_steps(doc, job, base, workspace, leg_label):
    # GITHUB_ENV and GITHUB_PATH live for one job, as on a runner, and are removed after it.
    with tempfile.TemporaryDirectory(prefix="gh-runner-") as state:
        github_job_steps(doc, job, base, workspace, leg_label, state)


def github_job_steps(doc, job, base, workspace, leg_label, state):
    github_env = os.path.join(state, "env")
    github_path = os.path.join(state, "path")
    open(github_env, "w").close()
    open(github_path, "w").close()
    workflow_env = stringify(doc.get("env"))
    job_env = stringify(job.get("env"))
    for i, step in enumerate(job.get("steps") or []):
        label = step.get("name") or step.get("run") or step.get("uses") or f"step {i}"
        label = f"{leg_label}{label}"
        if "uses" in step:
            if str(step["uses"]).startswith("actions/checkout@"):
                continue
            fail(f"step '{label}' uses {step['uses']}, which this stand-in cannot run")
        env = dict(base)
        env["GITHUB_WORKSPACE"] = workspace
        env.update(workflow_env)
        env.update(job_env)
        env.update(stringify(step.get("env")))
        with open(github_env) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    env[k] = v
        with open(github_path) as f:
            extra = [line.strip() for line in f if line.strip()]
        env["PATH"] = os.pathsep.join(list(reversed(extra)) + [env.get("PATH", "")])
        env["GITHUB_ENV"] = github_env
        env["GITHUB_PATH"] = github_path
        script = step["run"]
        if "${{" in script:
            fail(f"expression in step '{label}' (not evaluated by this stand-in)")
        run_bash(script, env, label, cwd=workspace)


def github(doc):
    jobs = doc.get("jobs") or {}
    if len(jobs) != 1:
        fail(f"expected one job, found {list(jobs)}")
    (name, job), = jobs.items()
    base = runner_env()
    base.update({"CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": os.getcwd(),
                 "GITHUB_REPOSITORY": "acme/data-jobs", "GITHUB_REF": "refs/heads/main",
                 "GITHUB_RUN_ID": os.environ.get("GATELAKE_TEST_CI_GITHUB_RUN_ID", "7000000001"),
                 "GITHUB_RUN_ATTEMPT": os.environ.get("GATELAKE_TEST_CI_GITHUB_RUN_ATTEMPT", "1")})
    if grants_id_token(job.get("permissions", doc.get("permissions"))):
        base["ACTIONS_ID_TOKEN_REQUEST_URL"] = os.environ["GATELAKE_TEST_CI_GITHUB_OIDC_URL"]
        base["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = os.environ["GATELAKE_TEST_CI_GITHUB_OIDC_TOKEN"]
    legs = matrix_legs(job.get("strategy"))
    if legs == [{}]:
        github_steps(doc, job, base, os.getcwd(), "")
        return
    # A matrix: every leg at once, each on its own runner, i.e. in its own copy of the
    # workspace (the checkout), ../leg-N beside it.
    workspaces = []
    for n in range(1, len(legs) + 1):
        copy = os.path.join(os.path.dirname(os.getcwd()), f"leg-{n}")
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(os.getcwd(), copy)
        workspaces.append(copy)
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(legs)) as pool:
        futures = [
            pool.submit(github_steps, doc, job, base, ws, f"leg {n} {json.dumps(leg)}: ")
            for n, (leg, ws) in enumerate(zip(legs, workspaces), 1)
        ]
        failed = []
        for future in futures:
            try:
                future.result()
            except SystemExit as e:
                failed.append(e.code)
    if failed:
        fail(f"{len(failed)} of {len(legs)} matrix legs failed")


# --------------------------------------------------------------------------------------------
# GitLab CI
# --------------------------------------------------------------------------------------------

GITLAB_KEYWORDS = {"default", "include", "stages", "variables", "workflow", "image", "services",
                   "before_script", "after_script", "cache"}


def gitlab_id_token(aud):
    url = os.environ["GATELAKE_TEST_CI_GITLAB_ID_TOKEN_URL"]
    with urllib.request.urlopen(f"{url}?{urllib.parse.urlencode({'aud': aud})}") as r:
        return r.read().decode()


def gitlab(doc):
    jobs = {k: v for k, v in doc.items() if k not in GITLAB_KEYWORDS and not k.startswith(".")}
    if len(jobs) != 1:
        fail(f"expected one job, found {list(jobs)}")
    (name, job), = jobs.items()
    env = runner_env()
    env.update({"CI": "true", "GITLAB_CI": "true", "CI_PROJECT_DIR": os.getcwd(),
                "CI_PROJECT_PATH": "acme/data-jobs", "CI_COMMIT_REF_NAME": "main"})
    env.update(stringify(doc.get("variables")))
    env.update(stringify(job.get("variables")))
    for var, spec in (job.get("id_tokens") or {}).items():
        aud = spec.get("aud") if isinstance(spec, dict) else None
        if not aud:
            fail(f"id_tokens.{var} has no aud")
        env[var] = gitlab_id_token(aud)
    lines = list(job.get("before_script", doc.get("before_script")) or []) + list(job.get("script") or [])
    if not lines:
        fail(f"job {name} has no script")
    for line in lines:
        if "${{" in line:
            fail(f"expression in job {name} (not evaluated by this stand-in)")
    run_bash("\n".join(lines) + "\n", env, f"job {name}")


# --------------------------------------------------------------------------------------------
# Azure Pipelines
# --------------------------------------------------------------------------------------------

def ado(doc):
    system = {
        "System.AccessToken": os.environ["GATELAKE_TEST_CI_ADO_ACCESS_TOKEN"],
        "System.OidcRequestUri": os.environ["GATELAKE_TEST_CI_ADO_OIDC_URI"],
    }
    variables = stringify(doc.get("variables")) if isinstance(doc.get("variables"), dict) else {}
    macros = dict(system)
    macros.update(variables)

    def expand(value):
        def one(m):
            name = m.group(1)
            if name not in macros:
                fail(f"macro $({name}) is not defined")
            return macros[name]
        return re.sub(r"\$\(([A-Za-z0-9_.]+)\)", one, value)

    base = runner_env()
    base.update({"TF_BUILD": "True", "SYSTEM_OIDCREQUESTURI": system["System.OidcRequestUri"],
                 "BUILD_SOURCESDIRECTORY": os.getcwd()})
    # Pipeline variables are environment variables of every step (name upper-cased, . → _).
    for k, v in variables.items():
        base[k.upper().replace(".", "_")] = v
    for i, step in enumerate(doc.get("steps") or []):
        label = step.get("displayName") or f"step {i}"
        env = dict(base)
        env.update({k: expand(v) for k, v in stringify(step.get("env")).items()})
        if "checkout" in step:
            continue
        if "script" in step or "bash" in step:
            script = expand(step.get("script") or step.get("bash"))
            run_bash(script, env, label)
            continue
        if step.get("task") == "AzureCLI@2":
            inputs = step.get("inputs") or {}
            if inputs.get("scriptType") != "bash" or inputs.get("scriptLocation") != "inlineScript":
                fail(f"step '{label}': only scriptType bash with an inlineScript is supported")
            connection = inputs.get("azureSubscription")
            if connection != os.environ["GATELAKE_TEST_CI_ADO_CONNECTION_NAME"]:
                fail(f"step '{label}': unknown service connection {connection!r}")
            env["AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"] = os.environ["GATELAKE_TEST_CI_ADO_CONNECTION_ID"]
            env["AZURESUBSCRIPTION_CLIENT_ID"] = os.environ["GATELAKE_TEST_CI_ADO_CLIENT_ID"]
            env["AZURESUBSCRIPTION_TENANT_ID"] = os.environ["GATELAKE_TEST_CI_ADO_TENANT_ID"]
            if str(inputs.get("addSpnToEnvironment")).lower() == "true":
                env["servicePrincipalId"] = env["AZURESUBSCRIPTION_CLIENT_ID"]
                env["tenantId"] = env["AZURESUBSCRIPTION_TENANT_ID"]
            run_bash(expand(inputs["inlineScript"]), env, label,
                     shell=("bash", "--noprofile", "--norc"))
            continue
        fail(f"step '{label}' is not a script, bash or AzureCLI@2 step: {json.dumps(step)}")


def main():
    if len(sys.argv) != 3:
        fail("usage: ci_runner.py github|gitlab|azure-devops PIPELINE_FILE")
    kind, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        doc = yaml.safe_load(f)
    {"github": github, "gitlab": gitlab, "azure-devops": ado}.get(kind, lambda _: fail(kind))(doc)
    print("ci_runner: job succeeded", file=sys.stderr)


if __name__ == "__main__":
    main()
