"""The Helm chart's tests (`cargo xtask test-chart`): lint, render and validate charts/stroem.

Runs in a venv with the PyPI packages helm-python-sdk (Helm's own library: lint, values schema,
templates) and kubernetes-validate (the Kubernetes 1.37 OpenAPI schemas, offline). For every
value set: `helm lint --strict`, render, then `kubernetes-validate --strict` over every
manifest, then checks of what the value set is for. The value sets are the README's
`helm install … --set …` lines (read from README.md, so the documented lines are the tested
ones), more combinations and edge cases, and values that must be refused with a clear message.

Prints one line per case and `N passed, M failed`; exits non-zero on any failure.
"""

import re
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import helm_python
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "stroem"
KUBERNETES_VERSION = "1.37.0"
NAMESPACE = "tools"
PG = "postgres://stroem:pw@postgres:5432/stroem"


def readme_installs():
    """The README's `helm install stroem ./charts/stroem --set …` commands as value dicts."""
    text = (ROOT / "README.md").read_text()
    commands = re.findall(r"^helm install stroem \./charts/stroem((?:[ \t]*\\\n[^\n\\]*)*)", text, re.M)
    if len(commands) < 4:
        raise AssertionError(f"README.md shows {len(commands)} helm install lines, expected 4+")
    installs = []
    for command in commands:
        values = {}
        for expression in re.findall(r"--set\s+(\S+)", command):
            key, _, value = expression.partition("=")
            merge(values, helm_python.parse_set_string(f"{key}={value.strip(chr(34))}"))
        installs.append(values)
    return installs


def merge(into, other):
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value
    return into


def render(values):
    report = helm_python.lint(CHART, values, strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    if problems:
        raise AssertionError(f"helm lint: {problems}")
    with helm_python.Chart.load(CHART) as chart:
        rendered = chart.render(values, name="stroem", namespace=NAMESPACE, is_install=True)
    documents = []
    for path, text in rendered.items():
        if path.endswith("NOTES.txt"):
            continue
        documents += [doc for doc in yaml.safe_load_all(text) if doc]
    return rendered, documents


def validate(rendered):
    with tempfile.TemporaryDirectory() as directory:
        files = []
        for path, text in rendered.items():
            if path.endswith("NOTES.txt") or not text.strip():
                continue
            file = Path(directory) / path.replace("/", "_")
            file.write_text(text)
            files.append(str(file))
        result = subprocess.run(
            [str(Path(sys.executable).parent / "kubernetes-validate"), "--strict", "--quiet", "-k", KUBERNETES_VERSION, *files],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise AssertionError(f"kubernetes-validate:\n{result.stdout}{result.stderr}")


def find(documents, kind, name=None):
    found = [d for d in documents if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    if not found:
        raise AssertionError(f"no {kind} {name or ''}")
    return found[0]


def config(documents, role):
    return yaml.safe_load(find(documents, "ConfigMap", "stroem")["data"][f"{role}.yaml"])


def pod(documents, component):
    return find(documents, "Deployment", f"stroem-{component}")["spec"]["template"]["spec"]


def container(spec, name):
    return next(c for c in spec["containers"] + spec.get("initContainers", []) if c["name"] == name)


def known_keys():
    """The top-level keys of stroem.example.yaml (its commented-out keys included), and their
    `_file` spellings."""
    keys = set()
    for line in (ROOT / "stroem.example.yaml").read_text().splitlines():
        match = re.match(r"^#? ?([a-z_]+):", line)
        if match:
            keys |= {match.group(1), match.group(1) + "_file"}
    return keys


KNOWN_KEYS = known_keys()


def check_common(documents):
    """Every rendering: non-root, read-only root filesystem, probes, secrets as files, known
    configuration keys."""
    for role in ["server", "worker"]:
        unknown = set(config(documents, role)) - KNOWN_KEYS
        assert not unknown, f"{role}.yaml sets keys stroem.example.yaml does not have: {unknown}"
    for component in ["server", "worker"]:
        spec = pod(documents, component)
        assert spec["securityContext"]["runAsNonRoot"] is True
        strom = container(spec, component)
        assert strom["securityContext"]["readOnlyRootFilesystem"] is True
        assert strom["securityContext"]["allowPrivilegeEscalation"] is False
        mounts = {m["mountPath"] for m in strom["volumeMounts"]}
        assert {"/var/lib/stroem", "/tmp", "/etc/stroem/secrets"} <= mounts, mounts
        for volume in spec["volumes"]:
            if "secret" in volume:
                # root owns the files; the pod's fsGroup (the image's gid) must read them
                assert volume["secret"]["defaultMode"] == 0o440, volume
        assert spec["securityContext"]["fsGroup"] == 10001
        env = {e["name"]: e.get("value") for e in strom["env"]}
        assert env["STROEM_ROLE"] == ("serve" if component == "server" else "work")
    server = container(pod(documents, "server"), "server")
    assert server["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert server["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert config(documents, "worker")["worker_token_file"] == config(documents, "server")["worker_token_file"]
    assert config(documents, "worker")["server_url"] == f"http://stroem.{NAMESPACE}.svc:8080"
    find(documents, "Service", "stroem")


def expect_basic(documents):
    secret = find(documents, "Secret", "stroem")
    assert {"database-url", "worker-token"} <= set(secret["data"]), secret["data"].keys()
    assert config(documents, "server")["worker_token_file"] == "/etc/stroem/secrets/worker-token"
    assert config(documents, "server")["db"] == {"url_file": "/etc/stroem/secrets/database-url"}
    assert find(documents, "Deployment", "stroem-worker")["spec"]["replicas"] == 2


def expect_auth(documents):
    auth = config(documents, "server")["auth"]
    assert auth["jwt_secret_file"] == "/etc/stroem/secrets/jwt-secret"
    assert auth["refresh_secret_file"] == "/etc/stroem/secrets/refresh-secret"
    assert auth["providers"] == {"internal": {"provider_type": "internal"}}
    assert {"jwt-secret", "refresh-secret"} <= set(find(documents, "Secret", "stroem")["data"])


def expect_kubernetes(documents):
    role = find(documents, "Role")
    assert role["metadata"]["namespace"] == "stroem-jobs"
    assert any("pods" in r["resources"] and "create" in r["verbs"] for r in role["rules"])
    binding = find(documents, "RoleBinding")
    assert binding["metadata"]["namespace"] == "stroem-jobs"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "stroem-worker", "namespace": NAMESPACE}]
    spec = pod(documents, "worker")
    assert spec["serviceAccountName"] == "stroem-worker"
    assert spec["automountServiceAccountToken"] is True
    assert config(documents, "worker")["kubernetes"]["namespace"] == "stroem-jobs"
    assert pod(documents, "server")["automountServiceAccountToken"] is False


def expect_acl_kept(documents):
    assert config(documents, "server")["auth"]["acl"] == {"default": "view"}


def expect_dind(documents):
    spec = pod(documents, "worker")
    dind = container(spec, "dind")
    assert dind["restartPolicy"] == "Always" and dind["securityContext"]["privileged"] is True
    assert config(documents, "worker")["docker"] == {"host": "unix:///var/run/dind/docker.sock"}
    worker_mounts = {m["mountPath"] for m in container(spec, "worker")["volumeMounts"]}
    assert "/var/run/dind" in worker_mounts
    assert {"Role", "RoleBinding"}.isdisjoint(d["kind"] for d in documents)


def expect_sqlite(documents):
    assert "db" not in config(documents, "server")
    server = find(documents, "Deployment", "stroem-server")
    assert server["spec"]["replicas"] == 1 and server["spec"]["strategy"]["type"] == "Recreate"
    pvc = find(documents, "PersistentVolumeClaim", "stroem-data")
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    workspace = find(documents, "ConfigMap", "stroem-workspace")
    assert "hello-world" in workspace["data"]["hello.yaml"]
    assert config(documents, "server")["workspaces"]["default"] == {"type": "folder", "path": "/workspace"}


def expect_ha(documents):
    server = find(documents, "Deployment", "stroem-server")
    assert server["spec"]["replicas"] == 3 and server["spec"]["strategy"]["type"] == "RollingUpdate"
    assert find(documents, "PersistentVolumeClaim")["spec"]["accessModes"] == ["ReadWriteMany"]
    ingress = find(documents, "Ingress", "stroem")
    assert ingress["spec"]["tls"][0]["secretName"] == "stroem-tls"
    assert ingress["spec"]["ingressClassName"] == "nginx"


def expect_existing_secret(documents):
    assert not [d for d in documents if d["kind"] == "Secret"]
    server = config(documents, "server")
    assert server["db"]["url_file"] == "/etc/stroem/secrets/db"
    assert server["worker_token_file"] == "/etc/stroem/secrets/token"
    volumes = {v["name"]: v for v in pod(documents, "server")["volumes"]}
    assert volumes["secrets"]["secret"]["secretName"] == "my-stroem"


def expect_git(documents):
    workspaces = config(documents, "server")["workspaces"]
    assert workspaces["data-team"]["type"] == "git"
    assert workspaces["data-team"]["auth"]["token_file"] == "/etc/stroem/workspace-secrets/data-team/token"
    spec = pod(documents, "server")
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["workspace-secret-data-team"]["secret"]["secretName"] == "data-team-git"
    assert "workspace" not in volumes
    assert not [d for d in documents if d["metadata"]["name"] == "stroem-workspace"]


def expect_oidc(documents):
    auth = config(documents, "server")["auth"]
    assert auth["base_url"] == "https://stroem.example.com"
    assert auth["providers"]["google"] == {
        "provider_type": "oidc",
        "display_name": "Google",
        "issuer_url": "https://accounts.google.com",
        "client_id": "client-1",
        "client_secret_file": "/etc/stroem/secrets/oidc-google-client-secret",
    }
    assert "internal" not in auth["providers"]
    assert auth["initial_user"]["password_file"] == "/etc/stroem/secrets/initial-user-password"
    assert "oidc-google-client-secret" in find(documents, "Secret", "stroem")["data"]


def expect_workspace_claim(documents):
    spec = pod(documents, "server")
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["workspace"]["persistentVolumeClaim"]["claimName"] == "workflows"
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "stroem-state"
    assert not [d for d in documents if d["kind"] == "PersistentVolumeClaim"]


def positive_cases():
    seed = readme_installs()
    cases = [("defaults (SQLite, generated token)", {}, [expect_sqlite])]
    checks = [[expect_basic], [expect_basic, expect_auth], [expect_basic, expect_kubernetes], [expect_basic, expect_dind]]
    for index, values in enumerate(seed):
        cases.append((f"README install #{index + 1}: {values}", values, checks[index] if index < len(checks) else []))
    cases += [
        (
            "HA: 3 servers on PostgreSQL, ReadWriteMany logs, ingress with TLS",
            {
                "database": {"url": PG},
                "workerToken": "x" * 40,
                "server": {"replicas": 3, "persistence": {"accessModes": ["ReadWriteMany"], "storageClass": "nfs"}},
                "ingress": {
                    "enabled": True,
                    "className": "nginx",
                    "tls": [{"secretName": "stroem-tls", "hosts": ["stroem.example.com"]}],
                },
            },
            [expect_ha],
        ),
        (
            "existing Secret with PostgreSQL",
            {"existingSecret": {"name": "my-stroem", "databaseUrlKey": "db", "workerTokenKey": "token"}},
            [expect_existing_secret],
        ),
        (
            "git workspace with a token secret, no example files",
            {
                "server": {
                    "config": {
                        "workspaces": {
                            "data-team": {
                                "type": "git",
                                "url": "https://git.example.com/data/workflows.git",
                                "ref": "main",
                                "poll_interval_secs": 60,
                                "auth": {"type": "token", "token_file": "/etc/stroem/workspace-secrets/data-team/token"},
                            }
                        }
                    },
                    # null removes the default example files (Helm drops null values).
                    "workspace": {"files": None},
                    "workspaceSecrets": [{"name": "data-team", "secretName": "data-team-git"}],
                }
            },
            [expect_git],
        ),
        (
            "the seed README's auth line (short secrets: Strøm warns) and an ACL in server.config",
            {
                "database": {"url": PG},
                "workerToken": "my-secure-token",
                "auth": {"enabled": True, "jwtSecret": "jwt-secret-here", "refreshSecret": "refresh-secret-here"},
                "server": {"config": {"auth": {"acl": {"default": "view"}}}},
            },
            [expect_auth, expect_acl_kept],
        ),
        (
            "auth with OIDC only and an initial user",
            {
                "auth": {
                    "enabled": True,
                    "internal": False,
                    "baseUrl": "https://stroem.example.com",
                    "providers": [
                        {
                            "id": "google",
                            "displayName": "Google",
                            "issuerUrl": "https://accounts.google.com",
                            "clientId": "client-1",
                            "clientSecret": "s3cret",
                        }
                    ],
                    "initialUser": {"email": "admin@example.com", "password": "pw"},
                }
            },
            [expect_oidc],
        ),
        (
            "Kubernetes runner and Docker-in-Docker together, no workers",
            {
                "worker": {"replicas": 0, "kubernetes": {"enabled": True}, "dind": {"enabled": True}},
                "server": {"embeddedWorker": True},
            },
            [expect_kubernetes, expect_dind_with_kubernetes],
        ),
        (
            "workspace and data on existing claims",
            {"server": {"workspace": {"existingClaim": "workflows"}, "persistence": {"existingClaim": "stroem-state"}}},
            [expect_workspace_claim],
        ),
        (
            "no persistence, custom image, extra env and scheduling",
            {
                "image": {"repository": "registry.example.com/stroem", "tag": "0.1.0-rc1"},
                "imagePullSecrets": [{"name": "regcred"}],
                "server": {"persistence": {"enabled": False}, "extraEnv": [{"name": "RUST_LOG", "value": "debug"}]},
                "worker": {"nodeSelector": {"pool": "jobs"}, "tolerations": [{"key": "jobs", "operator": "Exists"}]},
            },
            [expect_no_persistence],
        ),
    ]
    return cases


def expect_dind_with_kubernetes(documents):
    spec = pod(documents, "worker")
    container(spec, "dind")
    assert config(documents, "worker")["docker"]["host"] == "unix:///var/run/dind/docker.sock"
    assert config(documents, "server")["embedded_worker"] is True
    assert find(documents, "Deployment", "stroem-worker")["spec"]["replicas"] == 0


def expect_no_persistence(documents):
    spec = pod(documents, "server")
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}
    assert container(spec, "server")["image"] == "registry.example.com/stroem:0.1.0-rc1"
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod(documents, "worker")["nodeSelector"] == {"pool": "jobs"}


# Values that must be refused, and a fragment of the message that must say why.
NEGATIVE_CASES = [
    ("two servers on SQLite", {"server": {"replicas": 2}}, "needs PostgreSQL"),
    (
        "two servers on a ReadWriteOnce volume",
        {"database": {"url": PG}, "server": {"replicas": 2}},
        "ReadWriteMany",
    ),
    ("a misspelt key", {"worker": {"replica": 3}}, "replica"),
    ("a wrong type", {"worker": {"replicas": "two"}}, "replicas"),
    ("a database URL that is not PostgreSQL", {"database": {"url": "mysql://x"}}, "/database/url"),
    ("OIDC without a public URL", {"auth": {"enabled": True, "providers": [{"id": "g", "issuerUrl": "https://i", "clientId": "c"}]}}, "baseUrl"),
    ("both workspace sources", {"server": {"workspace": {"configMap": "a", "existingClaim": "b"}}}, "not both"),
    ("a step namespace that is not a DNS label", {"worker": {"kubernetes": {"enabled": True, "namespace": "Bad_NS"}}}, "namespace"),
]


def readme_key_table():
    """The README's table of key Helm values: every key exists in values.yaml with the default
    the table states."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("Key Helm values") :]
    rows = re.findall(r"^\| `([^`]+)` \| [^|]+ \| `(.+)` \|$", table.split("\n\n", 2)[1], re.M)
    if len(rows) < 7:
        raise AssertionError(f"the README's key table has {len(rows)} rows")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for key, default in rows:
        node = values
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise AssertionError(f"README key `{key}` is not in values.yaml")
            node = node[part]
        stated = yaml.safe_load(default)
        if node != stated:
            raise AssertionError(f"README says `{key}` defaults to {stated!r}, values.yaml has {node!r}")


def main():
    helm_python.disable_logging()
    passed = failed = 0

    def report(name, error):
        nonlocal passed, failed
        if error is None:
            passed += 1
            print(f"ok   {name}")
        else:
            failed += 1
            print(f"FAIL {name}\n{error}")

    try:
        cases = positive_cases()
    except Exception:  # the README lines themselves are a case
        report("README helm install lines", traceback.format_exc())
        cases = []
    try:
        readme_key_table()
        report("README key table matches values.yaml", None)
    except Exception:
        report("README key table matches values.yaml", traceback.format_exc())
    for name, values, checks in cases:
        try:
            rendered, documents = render(values)
            validate(rendered)
            check_common(documents)
            for check in checks:
                check(documents)
            report(name, None)
        except Exception:
            report(name, traceback.format_exc())
    for name, values, fragment in NEGATIVE_CASES:
        try:
            render(values)
            report(f"refuses {name}", f"rendered without an error; expected one mentioning {fragment!r}")
        except Exception as error:  # helm_python raises HelmValuesError/HelmRenderError
            message = str(error)
            report(f"refuses {name}", None if fragment in message else f"error lacks {fragment!r}: {message}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
