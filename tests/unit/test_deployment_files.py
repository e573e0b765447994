"""compose.yaml and the config/ files agree with each other and with the service's settings.

No container engine runs here, so these files cannot be started in the tests; what can be checked
without one is checked: every variable the stack sets is a real setting, every mounted file exists,
every reference between the files resolves, every image is pinned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from todo_service.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {name.upper() for name in Settings.__struct_fields__}


def load(path: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / path).read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load("compose.yaml")


@pytest.mark.parametrize("service", ["app", "migrate"])
def test_every_variable_the_stack_sets_is_a_setting(compose: dict[str, Any], service: str) -> None:
    environment = compose["services"][service]["environment"]
    assert set(environment) <= SETTINGS, set(environment) - SETTINGS
    assert environment["APP_ENV"] == "production"


def test_every_mounted_file_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}"


def test_every_image_is_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        assert ":" in image, f"{name}: {image}"
        assert image.rpartition(":")[2] not in {"", "latest"}, f"{name}: {image}"


def test_the_app_starts_after_migrations_and_healthy_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    app = services["app"]["depends_on"]
    assert app["migrate"]["condition"] == "service_completed_successfully"
    assert app["redis"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["todo-service", "database", "upgrade", "--no-prompt"]
    assert "healthcheck" in services["postgres"]
    assert any("/var/lib/postgresql/data" in volume for volume in services["postgres"]["volumes"])


def test_monitoring_is_an_optional_profile(compose: dict[str, Any]) -> None:
    for name in ("prometheus", "grafana"):
        assert compose["services"][name]["profiles"] == ["monitoring"]
    for name in ("app", "postgres", "redis", "otel-collector", "jaeger"):
        assert "profiles" not in compose["services"][name]


def test_spans_flow_from_the_app_through_the_collector_to_jaeger(compose: dict[str, Any]) -> None:
    collector = load("config/otel-collector.yaml")
    traces = collector["service"]["pipelines"]["traces"]
    for kind in ("receivers", "processors", "exporters"):
        assert set(traces[kind]) <= set(collector[kind]), kind
    http_receiver = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    endpoint = compose["services"]["app"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert endpoint == f"http://otel-collector:{http_receiver.rpartition(':')[2]}"
    jaeger = collector["exporters"][traces["exporters"][0]]["endpoint"]
    assert jaeger.partition(":")[0] in compose["services"]


def test_prometheus_scrapes_the_app(compose: dict[str, Any]) -> None:
    scrape = load("config/prometheus.yml")["scrape_configs"][0]
    assert scrape["metrics_path"] == "/metrics"
    host, _, port = scrape["static_configs"][0]["targets"][0].partition(":")
    assert host == "app"
    assert f"{port}:{port}" in compose["services"]["app"]["ports"]
    datasource = load("config/grafana/provisioning/datasources/prometheus.yaml")["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
