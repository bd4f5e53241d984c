"""SMTP delivery throughput: N digest-sized messages (~20 KB: Chinese subject, text and HTML parts,
serialised ahead) sent through SmtpTransport to a local aiosmtpd that accepts and discards them, next
to a reference in the same run: a bare aiosmtplib loop over the same number of reused connections.
Prints e-mails/s (medians of --repeat runs) for 1 connection and for --connections, and the ratio.

    .venv/bin/python bench/bench_delivery.py [--messages 2000] [--connections 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from email.message import EmailMessage
from typing import Any

import aiosmtplib

from monitor.config.settings import RetryConfig, SmtpConfig
from monitor.db.engine import create_schema, make_engine
from monitor.deliver import outbox
from monitor.deliver.sender import deliver_pending
from monitor.deliver.transport import Envelope, SmtpTransport

SENDER = "jxk@czj.example.gov.cn"


def digest(i: int, rows: int = 60) -> bytes:
    """A unit's digest: one line per project in the text part, one table row in the HTML part."""
    projects = [
        (
            f"{i:04d}{n:03d}",
            f"第{n}号农村饮水安全巩固提升工程（州级配套）",
            1_250_000 + n * 731,
            37.5 + n % 50,
        )
        for n in range(rows)
    ]
    msg = EmailMessage()
    msg["From"] = f"州财政局预算绩效管理科 <{SENDER}>"
    msg["To"] = f"unit{i}@example.gov.cn"
    msg["Subject"] = f"【预算绩效运行监控】第{i}单位 5月监控点预警汇总（红色 3 项，黄色 7 项）"
    msg.set_content(
        "各项目执行情况如下：\n\n"
        + "\n".join(
            f"{code}  {name}  预算 {budget:,} 元  执行率 {rate:.1f}%" for code, name, budget, rate in projects
        )
    )
    rows_html = "".join(
        f"<tr><td>{code}</td><td>{name}</td><td>{budget:,}</td><td style='color:#c00'>{rate:.1f}%</td></tr>"
        for code, name, budget, rate in projects
    )
    msg.add_alternative(
        f"<html><body><h1>预警汇总</h1><table>{rows_html}</table></body></html>", subtype="html"
    )
    return msg.as_bytes()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int) -> subprocess.Popen[bytes]:
    """aiosmtpd in its own process (so it does not share our GIL), discarding every message."""
    cmd = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("aiosmtpd did not start")


async def ours(port: int, envelopes: list[Envelope], connections: int) -> None:
    cfg = SmtpConfig(host="127.0.0.1", port=port, connections=connections, timeout_seconds=30)
    async with SmtpTransport(cfg) as transport:
        await asyncio.gather(*(transport.send(e) for e in envelopes))


async def bare(port: int, envelopes: list[Envelope], connections: int) -> None:
    """The reference: N connections, each a worker sending from a shared iterator, no error handling."""
    pending = iter(envelopes)

    async def worker() -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30) as smtp:
            for e in pending:
                await smtp.sendmail(e.sender, list(e.recipients), e.raw)

    await asyncio.gather(*(worker() for _ in range(connections)))


Run = Callable[[int, list[Envelope], int], Coroutine[Any, Any, None]]


def rate(run: Run, port: int, envelopes: list[Envelope], connections: int) -> float:
    start = time.perf_counter()
    asyncio.run(run(port, envelopes, connections))
    return len(envelopes) / (time.perf_counter() - start)


def outbox_rate(port: int, envelopes: list[Envelope], connections: int) -> float:
    """What `monitor send` does: pending outbox rows in a SQLite file, each claimed, sent over the
    transport and recorded (attempt row, status). Queueing the rows is not timed."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        create_schema(engine)
        now = dt.datetime.now(dt.UTC)
        rows = [
            {
                "message_id": f"<{e.outbox_id}@bench>",
                "checkpoint": "2025-05",
                "kind": "warning",
                "reason": "first",
                "unit_code": str(e.outbox_id),
                "recipients": ";".join(e.recipients),
                "subject": "s",
                "raw": e.raw.decode("ascii"),
                "fingerprint": "f",
                "snapshot": "{}",
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for e in envelopes
        ]
        with engine.begin() as conn:
            outbox.queue(conn, rows)
        cfg = SmtpConfig(host="127.0.0.1", port=port, connections=connections, timeout_seconds=30)
        start = time.perf_counter()
        tally = asyncio.run(
            deliver_pending(
                engine,
                SmtpTransport(cfg),
                sender=SENDER,
                retry=RetryConfig(),
                parallel=connections,
                clock=lambda: dt.datetime.now(dt.UTC),
            )
        )
        elapsed = time.perf_counter() - start
        engine.dispose()
    assert tally["sent"] == len(envelopes), tally
    return len(envelopes) / elapsed


def median_rates(
    port: int, envelopes: list[Envelope], connections: int, repeat: int
) -> tuple[float, float, float]:
    """Outbox path, transport alone and bare, alternating run by run so drift in load hits all alike."""
    runs = [
        (
            outbox_rate(port, envelopes, connections),
            rate(ours, port, envelopes, connections),
            rate(bare, port, envelopes, connections),
        )
        for _ in range(repeat)
    ]
    return (
        statistics.median(r[0] for r in runs),
        statistics.median(r[1] for r in runs),
        statistics.median(r[2] for r in runs),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--connections", type=int, default=4, help="measured next to 1 connection")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    raws = [digest(i) for i in range(args.messages)]
    envelopes = [Envelope(i, SENDER, (f"unit{i}@example.gov.cn",), raw) for i, raw in enumerate(raws)]
    size = statistics.mean(len(r) for r in raws)
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}"
    print(f"python {platform.python_version()}, {machine}")
    print(f"aiosmtplib {aiosmtplib.__version__}; server: aiosmtpd Sink in its own process on 127.0.0.1")
    print(f"{args.messages} messages of {size / 1024:.1f} KB on average; medians of {args.repeat} runs\n")
    print(
        f"{'connections':>11}  {'monitor send':>12}  {'transport':>9}  {'bare aiosmtplib':>15}"
        f"  {'send / bare':>11}  {'transport / bare':>16}"
    )
    port = free_port()
    server = start_server(port)
    try:
        for n in sorted({1, args.connections}):
            median_rates(port, envelopes[:50], n, 1)  # warm up both sides
            send_rate, ours_rate, bare_rate = median_rates(port, envelopes, n, args.repeat)
            print(
                f"{n:>11}  {send_rate:>12.0f}  {ours_rate:>9.0f}  {bare_rate:>15.0f}"
                f"  {send_rate / bare_rate:>11.2f}  {ours_rate / bare_rate:>16.2f}"
            )
        print("\n(mail/s; 'monitor send' = outbox rows claimed, sent and recorded in SQLite)")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
