"""The Grafana dashboard in ``config/`` charts metrics the service really exposes, by labels they really have.

A dashboard that names a metric or a label the service does not export shows an empty panel, and
nothing says why: here every expression is checked against a scrape of a running app that has
served the requests each panel is about.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

from litestar import get

from tests.factories import SameLoopClient, create_task, make_settings, register
from tests.integration.test_metrics import LOGIN, WRONG, Scrape, scrape
from todo_service.app import create_app

DASHBOARD = Path(__file__).resolve().parents[2] / "config/grafana/dashboards/todo-service.json"
METRIC = re.compile(r"\b(todo_[a-z_]+?)(?:_bucket|_count|_sum)?\b(?=\s*[{\[)])")
GROUPING = re.compile(r"\bby \(([^)]*)\)")
LEGEND_LABEL = re.compile(r"\{\{(\w+)\}\}")
# Labels Prometheus itself adds at scrape time, or that histogram_quantile needs.
SCRAPE_LABELS = {"job", "instance", "le"}


BOOM = "/api/v1/test-only/boom"


@get(BOOM, exclude_from_auth=True, sync_to_thread=False)
def boom() -> None:
    """A bug, for the 5xx panels."""
    raise RuntimeError("a test-only failure")


def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text())
    assert isinstance(data, dict)
    return data


def expressions() -> list[tuple[str, str]]:
    """Every ``(expr, legendFormat)`` of every panel."""
    return [(t["expr"], t.get("legendFormat", "")) for panel in dashboard()["panels"] for t in panel["targets"]]


async def test_every_panel_charts_exported_metrics_by_their_labels(database_url: str) -> None:
    settings = make_settings(database_url, rate_limit_enabled=True, rate_limit_login="1/minute")
    app = create_app(settings)
    app.register(boom)
    async with SameLoopClient(app=app) as client:
        assert (await client.get(BOOM)).status_code == 500
        account = await register(client)
        task = await create_task(client, account)
        await client.get(f"{account.tasks_url}/{task['id']}", headers=account.headers)
        await client.get(f"/api/v1/nothing/{uuid.uuid4()}")
        for _ in range(2):  # a failed login (audit event), then a rate-limit rejection
            await client.post(LOGIN, json={"email": account.email, "password": WRONG})
        scraped: Scrape = await scrape(client)

    labels_of: dict[str, set[str]] = {}
    for sample in scraped.samples:
        family = re.sub(r"_(bucket|count|sum)$", "", sample.name) if sample.name.startswith("todo_") else sample.name
        labels_of.setdefault(family, set()).update(sample.labels)
    exprs = expressions()
    assert len(exprs) >= 10
    for expr, legend in exprs:
        names = set(METRIC.findall(expr))
        assert names, expr
        for name in names:
            assert name in labels_of, f"{name} is not exported (in {expr})"
        available = set().union(*(labels_of[name] for name in names)) | SCRAPE_LABELS
        grouped = {label.strip() for group in GROUPING.findall(expr) for label in group.split(",") if label.strip()}
        assert grouped <= available, (expr, grouped - available)
        assert set(LEGEND_LABEL.findall(legend)) <= grouped | available, (legend, expr)


def test_the_dashboard_reads_the_provisioned_data_source() -> None:
    data = dashboard()
    assert data["uid"] == "todo-service"
    uids = {panel["datasource"]["uid"] for panel in data["panels"]}
    uids |= {t["datasource"]["uid"] for panel in data["panels"] for t in panel["targets"]}
    assert uids == {"prometheus"}  # the uid of config/grafana/provisioning/datasources/prometheus.yaml
    ids = [panel["id"] for panel in data["panels"]]
    assert len(ids) == len(set(ids))
