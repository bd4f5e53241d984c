"""The service's optional HTTP endpoint on 127.0.0.1 (`service.http_port`): `GET /healthz` (and HEAD)
answers 200 while the database answers and the service is not stopping, else 503 with the reason, with a
small JSON body (status, database reachable, last run, outbox backlog); `GET /metrics` gives runs,
lights, outbox and reload state in the Prometheus text format, read from the database.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, func, select, text

from monitor.core.workdays import as_utc
from monitor.db.engine import DELIVERY_ATTEMPT, PROJECT_RESULT, RUN, SERVICE_EVENT
from monitor.deliver import leases, outbox
from monitor.pipeline.runs import unfinished

log = logging.getLogger("monitor.service.http")
TEXT = "text/plain; charset=utf-8"
JSON = "application/json"
PROMETHEUS = CONTENT_TYPE_PLAIN_0_0_4
LIGHTS = ("green", "yellow", "red", "not_reported")


class HttpEndpoint:
    """/healthz and /metrics served from a daemon thread; `start()` returns the port actually bound."""

    def __init__(
        self,
        port: int,
        engine_getter: Callable[[], Engine],
        is_stopping: Callable[[], bool],
        lease: dt.timedelta = dt.timedelta(seconds=30),
    ) -> None:
        self.port, self.engine_getter, self.is_stopping = port, engine_getter, is_stopping
        self.lease = lease  # a `sending` claim not renewed this long counts as stuck
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        self._server = _Server(("127.0.0.1", self.port), _Handler)
        self._server.endpoint = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)
        self._thread.start()
        self.port = int(self._server.server_address[1])  # the bound one when asked for port 0
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def health(self) -> tuple[int, dict[str, Any]]:
        """(status, body): 200 and status "ok" while the database answers and the service is not
        stopping, else 503, status "unhealthy" and the reason; with the last run and the outbox backlog
        (messages pending or being sent) when the database can tell them."""
        body: dict[str, Any] = {"status": "ok", "database": False, "last_run": None, "outbox_backlog": None}
        reason = "stopping" if self.is_stopping() else None
        try:
            with self.engine_getter().connect() as conn:
                conn.execute(text("SELECT 1"))
                body["database"] = True
                body.update(self._figures(conn))
        except Exception as exc:
            if not body["database"]:
                reason = reason or f"database: {type(exc).__name__}: {exc}".split("\n")[0]
            else:  # the database answers, its tables do not (yet): healthy as before, figures unknown
                log.debug("healthz figures: %s", exc)
        if reason:
            return 503, {**body, "status": "unhealthy", "reason": reason}
        return 200, body

    @staticmethod
    def _figures(conn: Any) -> dict[str, Any]:
        run = RUN
        last = conn.execute(
            select(run.c.id, run.c.checkpoint, run.c.status, run.c.started_at, run.c.finished_at)
            .order_by(run.c.id.desc())
            .limit(1)
        ).first()
        counts = outbox.counts(conn)
        when = {
            k: None if last is None or last._mapping[k] is None else as_utc(last._mapping[k]).isoformat()
            for k in ("started_at", "finished_at")
        }
        return {
            "last_run": None
            if last is None
            else {"id": last.id, "checkpoint": last.checkpoint, "status": last.status, **when},
            "outbox_backlog": counts.get("pending", 0) + counts.get("sending", 0),
        }

    def metrics(self) -> str:
        """The current figures in the Prometheus text exposition format (prometheus-client writes it)."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Figures(self))
        return generate_latest(registry).decode("utf-8")

    def families(self) -> list[Metric]:
        """The metric families, read from the database in one connection."""
        with self.engine_getter().connect() as conn:
            read = _read(conn, self.lease)
        return _work_families(read) + _trouble_families(read)


@dataclass(frozen=True)
class _Readings:
    """What /metrics reports, as read from the database."""

    runs: list[Any]  # (checkpoint, status, count)
    by_light: list[Any]  # (checkpoint, light or None, count)
    counts: dict[str, int]
    refused: int
    stuck: int
    unfinished: int
    failures: int
    reload: Any  # the last reload's (ok, at), or None


def _read(conn: Connection, lease: dt.timedelta) -> _Readings:
    run, result, event = RUN, PROJECT_RESULT, SERVICE_EVENT
    attempt = DELIVERY_ATTEMPT
    runs = conn.execute(
        select(run.c.checkpoint, run.c.status, func.count()).group_by(run.c.checkpoint, run.c.status)
    ).all()
    by_light = conn.execute(
        select(result.c.checkpoint, result.c.light, func.count()).group_by(
            result.c.checkpoint, result.c.light
        )
    ).all()
    failures = conn.execute(
        select(func.count()).select_from(attempt).where(attempt.c.outcome == "permanent")
    ).scalar_one()
    reload = conn.execute(
        select(event.c.ok, event.c.at).where(event.c.kind == "reload").order_by(event.c.id.desc())
    ).first()
    return _Readings(
        runs=list(runs),
        by_light=list(by_light),
        counts=outbox.counts(conn),
        refused=outbox.failed_recipients(conn),
        stuck=sum(leases.stuck(conn, dt.datetime.now(dt.UTC), lease).values()),
        unfinished=len(unfinished(conn)),
        failures=failures,
        reload=reload,
    )


def _work_families(r: _Readings) -> list[Metric]:
    """Up, runs, lights and outbox messages."""
    lights = {(c, name): 0 for c in {row[0] for row in r.by_light} for name in LIGHTS}
    lights.update({(c, light or "not_reported"): int(n) for c, light, n in r.by_light})
    return [
        _gauge("monitor_up", "1 while the service answers.", 1),
        _labelled(
            CounterMetricFamily(
                "monitor_runs",
                "Checkpoint runs by checkpoint and status.",
                labels=["checkpoint", "status"],
            ),
            [((c, s), n) for c, s, n in sorted(r.runs)],
        ),
        _labelled(
            GaugeMetricFamily(
                "monitor_project_lights",
                "Projects by light in the latest results of each checkpoint.",
                labels=["checkpoint", "light"],
            ),
            sorted(lights.items()),
        ),
        _labelled(
            GaugeMetricFamily("monitor_outbox_messages", "Outbox messages by status.", labels=["status"]),
            [((s,), n) for s, n in r.counts.items()],
        ),
    ]


def _trouble_families(r: _Readings) -> list[Metric]:
    """What went wrong: runs left without their messages, stuck and refused messages, failed deliveries,
    the last reload."""
    return [
        _gauge(
            "monitor_runs_missing_messages",
            "Checkpoints with a run that stored results and has not queued its messages (a stopped process).",
            r.unfinished,
        ),
        _gauge(
            "monitor_outbox_stuck_messages",
            "Messages left 'sending' by a claim not renewed within its lease (a sender that stopped).",
            r.stuck,
        ),
        _gauge(
            "monitor_outbox_recipients_failed",
            "Recipients that refused a message for good while other recipients got it (status partial).",
            r.refused,
        ),
        CounterMetricFamily(
            "monitor_delivery_failures", "Delivery attempts that failed permanently.", value=r.failures
        ),
        _gauge(
            "monitor_last_reload_success",
            "1 if the last reload was accepted (or there was none), 0 if it was rejected.",
            1 if r.reload is None or r.reload.ok else 0,
        ),
        GaugeMetricFamily(
            "monitor_last_reload_timestamp_seconds",
            "When the last reload was attempted (Unix time); absent before the first one.",
            value=None if r.reload is None else as_utc(r.reload.at).timestamp(),
        ),
    ]


class _Figures(Collector):
    """Collects the endpoint's families at each scrape (nothing is kept between scrapes)."""

    def __init__(self, endpoint: HttpEndpoint) -> None:
        self.endpoint = endpoint

    def collect(self) -> Iterable[Metric]:
        return self.endpoint.families()


def _gauge(name: str, help_: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_, value=value)


def _labelled(
    family: GaugeMetricFamily | CounterMetricFamily, samples: Iterable[tuple[tuple[str, ...], float]]
) -> Metric:
    for labels, value in samples:
        family.add_metric(list(labels), value)
    return family


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    endpoint: HttpEndpoint


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_HEAD(self) -> None:
        self.answer(head=True)

    def do_GET(self) -> None:
        self.answer(head=False)

    def answer(self, head: bool) -> None:
        endpoint = self.server.endpoint
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            status, health = endpoint.health()
            body, kind = json.dumps(health, ensure_ascii=False), JSON
        elif path == "/metrics":
            try:
                status, body, kind = 200, endpoint.metrics(), PROMETHEUS
            except Exception as exc:
                log.warning("metrics failed: %s", exc)
                status, body, kind = 503, f"database: {type(exc).__name__}", TEXT
        else:
            status, body, kind = 404, "not found: try /healthz or /metrics", TEXT
        data = (body if body.endswith("\n") else body + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)
