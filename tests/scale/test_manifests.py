"""The Kubernetes manifests (deploy/k8s) against the code: probes on real routes and ports, the real
migration command, real settings, and the pod constraints the image relies on."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from tests.factories import make_settings
from tests.processes import run_console, service_env
from todo_service.app import create_app
from todo_service.core.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


def _documents(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict[str, Any]]:
    """Every resource kustomization.yaml applies, by kind (one of each)."""
    kustomization = _documents("kustomization.yaml")[0]
    found: dict[str, dict[str, Any]] = {}
    for name in kustomization["resources"]:
        for doc in _documents(name):
            assert doc["kind"] not in found, f"two {doc['kind']}s"
            found[doc["kind"]] = doc
    assert set(found) == {"ConfigMap", "Job", "Deployment", "Service", "PodDisruptionBudget"}
    return found


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """The app's route table, as create_app builds it: path -> methods."""
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('k8s') / 'routes.db'}"))
    table: dict[str, set[str]] = {}
    for route in app.routes:
        table.setdefault(route.path, set()).update(getattr(route, "methods", ()))
    return table


def _api(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    [container] = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _env_names(container: dict[str, Any], manifests: dict[str, dict[str, Any]]) -> Iterator[str]:
    yield from (variable["name"] for variable in container.get("env", ()))
    for source in container.get("envFrom", ()):
        assert source["configMapRef"]["name"] == manifests["ConfigMap"]["metadata"]["name"]
        yield from manifests["ConfigMap"]["data"]


def _outside_settings() -> set[str]:
    """The variables docs/configuration.md documents as read by something other than Settings."""
    page = (ROOT / "docs" / "configuration.md").read_text()
    table = page.split("## Outside the settings class", 1)[1]
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)`", table, flags=re.MULTILINE))


def test_probes_point_at_real_get_routes_on_the_served_port(
    manifests: dict[str, dict[str, Any]], routes: dict[str, set[str]]
) -> None:
    api = _api(manifests)
    ports = {port["name"]: port["containerPort"] for port in api["ports"]}
    command = api["command"]
    served = int(command[command.index("--port") + 1])
    assert command[:2] == ["todo-service", "run"]
    helped = run_console("run", "--help", cwd=ROOT, env=service_env())
    assert helped.returncode == 0, helped.stderr
    for option in (word for word in command[2:] if word.startswith("--")):
        assert option in helped.stdout, f"todo-service run has no {option}"
    for probe in PROBES:
        get = api[probe]["httpGet"]
        assert "GET" in routes.get(get["path"], set()), f"{probe}: no GET route {get['path']}"
        assert ports[get["port"]] == served, probe
    assert api["livenessProbe"]["httpGet"]["path"] == "/api/v1/health"  # touches nothing
    assert api["readinessProbe"]["httpGet"]["path"] == "/api/v1/health/ready"  # the database, Redis
    assert api["readinessProbe"]["timeoutSeconds"] > Settings().health_check_timeout
    service = manifests["Service"]["spec"]
    assert [port["targetPort"] for port in service["ports"]] == ["http"]
    assert "http" in ports


def test_selectors_match_the_pods(manifests: dict[str, dict[str, Any]]) -> None:
    deployment = manifests["Deployment"]["spec"]
    labels = deployment["template"]["metadata"]["labels"]
    for selector in (
        deployment["selector"]["matchLabels"],
        manifests["Service"]["spec"]["selector"],
        manifests["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= labels.items()
    job_labels = manifests["Job"]["spec"]["template"]["metadata"]["labels"]
    assert not manifests["Service"]["spec"]["selector"].items() <= job_labels.items()  # the Job gets no traffic
    assert deployment["replicas"] >= 2
    assert manifests["PodDisruptionBudget"]["spec"]["maxUnavailable"] < deployment["replicas"]


def test_every_variable_named_is_a_real_setting(manifests: dict[str, dict[str, Any]]) -> None:
    known = {name.upper() for name in Settings.__struct_fields__} | _outside_settings()
    assert {"WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR"} <= known
    containers = [_api(manifests), *manifests["Job"]["spec"]["template"]["spec"]["containers"]]
    named = {name for container in containers for name in _env_names(container, manifests)}
    assert named - known == set()
    assert {"DATABASE_URL", "DATABASE_DIRECT_URL", "DATABASE_PGBOUNCER", "SECRET_KEY", "REDIS_URL"} <= named
    # The values given are valid settings (the Secret's are the example's).
    secret = _documents("secret.example.yaml")[0]["stringData"]
    values: dict[str, str] = dict(manifests["ConfigMap"]["data"])
    for variable in _api(manifests)["env"]:
        ref = variable["valueFrom"]["secretKeyRef"]
        assert ref["key"] in secret, ref["key"]
        values[variable["name"]] = secret[ref["key"]] if variable["name"] != "SECRET_KEY" else "k" * 64
    settings = Settings.from_env({k: v for k, v in values.items() if k.lower() in Settings.__struct_fields__})
    assert settings.database_pgbouncer
    assert settings.database_direct_url != settings.database_url


def test_pods_run_as_the_images_user_on_a_read_only_root(manifests: dict[str, dict[str, Any]]) -> None:
    user = re.search(r"^USER (\d+):(\d+)$", (ROOT / "Containerfile").read_text(), flags=re.MULTILINE)
    assert user is not None
    for pod in (manifests["Deployment"]["spec"]["template"]["spec"], manifests["Job"]["spec"]["template"]["spec"]):
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
            int(user[1]),
            int(user[2]),
        )
        for container in pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["requests"]["memory"]
            assert container["resources"]["limits"]["memory"]
            assert "/tmp" in {mount["mountPath"] for mount in container["volumeMounts"]}  # noqa: S108  (a pod's path)
    mounts = {mount["mountPath"] for mount in _api(manifests)["volumeMounts"]}
    assert manifests["ConfigMap"]["data"]["PROMETHEUS_MULTIPROC_DIR"] in mounts  # writable, per pod


def test_the_job_runs_the_real_migration_command(manifests: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    [container] = manifests["Job"]["spec"]["template"]["spec"]["containers"]
    command = container["command"]
    assert command[0] == "todo-service"
    assert " ".join(command) in (ROOT / "justfile").read_text()  # `just migrate` runs the same
    assert manifests["Job"]["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    env = {variable["name"]: variable for variable in container["env"]}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "database-direct-url"  # not PgBouncer
    # The command itself, as the Job runs it, migrates a database.
    database = tmp_path / "job.db"
    done = run_console(*command[1:], cwd=tmp_path, env=service_env(DATABASE_URL=f"sqlite+aiosqlite:///{database}"))
    assert done.returncode == 0, done.stdout + done.stderr
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"users", "tasks", "alembic_versions"} <= tables
