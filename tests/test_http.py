"""The service's HTTP endpoint on a real socket: /healthz follows the database and shutdown, /metrics
gives the exact Prometheus lines for the worked examples after a May run, and `monitor serve` starts and
stops it with `service.http_port`."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, create_engine

from monitor.cli.main import main
from monitor.db.engine import make_engine
from monitor.service.http import HttpEndpoint
from monitor.service.runner import Service, fixed_start_clock

EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"


def cli(workdir: Path, *args: str) -> None:
    res = CliRunner().invoke(main, [*args, "--config", str(workdir / "config.yaml")], catch_exceptions=False)
    assert res.exit_code == 0, res.output


def get(port: int, path: str) -> tuple[int, str, str]:
    """(status, content type, body) of GET http://127.0.0.1:port/path, errors included."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode("utf-8")
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode("utf-8")


def health(port: int) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of GET /healthz, which always answers JSON."""
    status, kind, body = get(port, "/healthz")
    assert kind == "application/json", (kind, body)
    data: dict[str, Any] = json.loads(body)
    return status, data


def head(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of HEAD http://127.0.0.1:port/path, over a raw connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("HEAD", path)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


@pytest.fixture
def engine(workdir: Path, db_url: str) -> Iterator[Engine]:
    """The worked examples imported and the May checkpoint run without sending."""
    cli(workdir, "import", str(EXAMPLES))
    cli(workdir, "run", "--checkpoint", "2025-05", "--no-send")
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def test_healthz_is_ok_while_the_database_answers_and_503_once_stopping(engine: Engine) -> None:
    stopping = False
    endpoint = HttpEndpoint(0, lambda: engine, lambda: stopping)
    port = endpoint.start()
    try:
        status, body = health(port)
        assert status == 200
        run = body.pop("last_run")
        assert body == {"status": "ok", "database": True, "outbox_backlog": 5}  # the May run's messages
        assert (run["id"], run["checkpoint"], run["status"]) == (1, "2025-05", "finished")
        assert dt.datetime.fromisoformat(run["finished_at"]).tzinfo is not None
        stopping = True
        status, body = health(port)
        assert status == 503 and body["status"] == "unhealthy" and body["reason"] == "stopping"
        assert body["database"] is True
    finally:
        endpoint.stop()


def test_healthz_answers_head_like_get_without_a_body(engine: Engine) -> None:
    stopping = False
    endpoint = HttpEndpoint(0, lambda: engine, lambda: stopping)
    port = endpoint.start()
    try:
        status, headers, body = head(port, "/healthz")
        assert status == 200 and headers["Content-Type"] == "application/json" and body == b""
        assert int(headers["Content-Length"]) == len(get(port, "/healthz")[2].encode("utf-8"))
        stopping = True
        assert head(port, "/healthz")[0] == 503
        assert head(port, "/metrics")[0] == 200 and head(port, "/nowhere")[0] == 404
    finally:
        endpoint.stop()


def test_healthz_says_why_when_the_database_does_not_answer(tmp_path: Path) -> None:
    broken = create_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'monitor.db'}")
    endpoint = HttpEndpoint(0, lambda: broken, lambda: False)
    port = endpoint.start()
    try:
        status, body = health(port)
        assert status == 503 and body["reason"].startswith("database: OperationalError")
        assert body["status"] == "unhealthy" and body["database"] is False and body["last_run"] is None
    finally:
        endpoint.stop()
        broken.dispose()


def test_metrics_after_the_may_run_are_exact_prometheus_lines(engine: Engine) -> None:
    endpoint = HttpEndpoint(0, lambda: engine, lambda: False)
    port = endpoint.start()
    try:
        status, kind, body = get(port, "/metrics")
    finally:
        endpoint.stop()
    assert status == 200 and kind == "text/plain; version=0.0.4; charset=utf-8"
    samples = [
        f"{s.name}{{{','.join(f'{k}={v!r}' for k, v in s.labels.items())}}} {s.value:g}"
        if s.labels
        else f"{s.name} {s.value:g}"
        for family in text_string_to_metric_families(body)
        for s in family.samples
    ]
    assert samples == [
        "monitor_up 1",
        "monitor_runs_total{checkpoint='2025-05',status='finished'} 1",
        "monitor_project_lights{checkpoint='2025-05',light='green'} 0",
        "monitor_project_lights{checkpoint='2025-05',light='not_reported'} 0",
        "monitor_project_lights{checkpoint='2025-05',light='red'} 4",
        "monitor_project_lights{checkpoint='2025-05',light='yellow'} 1",
        "monitor_outbox_messages{status='pending'} 5",
        "monitor_outbox_messages{status='sending'} 0",
        "monitor_outbox_messages{status='sent'} 0",
        "monitor_outbox_messages{status='failed'} 0",
        "monitor_outbox_messages{status='partial'} 0",
        "monitor_runs_missing_messages 0",
        "monitor_outbox_stuck_messages 0",
        "monitor_outbox_recipients_failed 0",
        "monitor_delivery_failures_total 0",
        "monitor_last_reload_success 1",
    ]
    assert "# TYPE monitor_runs_total counter" in body and "# TYPE monitor_project_lights gauge" in body
    assert "# HELP monitor_last_reload_timestamp_seconds " in body  # announced, no sample before a reload


def test_other_paths_are_404(engine: Engine) -> None:
    endpoint = HttpEndpoint(0, lambda: engine, lambda: False)
    port = endpoint.start()
    try:
        assert get(port, "/")[0] == 404
        assert get(port, "/metrics/extra")[0] == 404
    finally:
        endpoint.stop()


def test_the_service_serves_http_port_and_reports_a_rejected_reload(workdir: Path, engine: Engine) -> None:
    config = workdir / "config.yaml"
    config.write_text(config.read_text(encoding="utf-8") + "service:\n  http_port: 0\n", encoding="utf-8")
    start = dt.datetime(2025, 5, 20, 9, tzinfo=dt.UTC)  # nothing is due
    svc = Service(config, None, fixed_start_clock(start), instance="test")
    svc.start()
    try:
        assert svc.http is not None
        port = svc.http.port
        assert health(port)[0] == 200 and health(port)[1]["status"] == "ok"
        (workdir / "rules" / "local.yaml").write_text("no_such_key: 1\n", encoding="utf-8")
        assert not svc.reload("test")
        body = get(port, "/metrics")[2]
        assert "monitor_last_reload_success 0.0\n" in body
        stamp = next(s for s in body.splitlines() if s.startswith("monitor_last_reload_timestamp_seconds "))
        assert abs(float(stamp.split()[1]) - start.timestamp()) < 60
    finally:
        svc.shutdown()
    with pytest.raises(urllib.error.URLError):
        get(port, "/healthz")
