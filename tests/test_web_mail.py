"""The warning e-mail carries the unit's signed link (captured by a real SMTP server), and the link
opens that unit's page, and only that unit's."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner
from mailserver import MailServer, body_text
from starlette.testclient import TestClient

from monitor.app import App
from monitor.cli.main import main
from monitor.config.settings import load_settings
from monitor.web.app import create_app

EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"
ENV = {"MONITOR_WEB_SECRET": "mail-link-secret-3Po9Iu6Yt2Re5Wq8Lk1Jh7Gf4Ds0"}


def test_the_link_in_a_warning_email_opens_only_that_units_page(workdir: Path) -> None:
    with MailServer() as server:
        cfg = workdir / "config.yaml"
        cfg.write_text(
            cfg.read_text(encoding="utf-8")
            + f"mail: {{mode: smtp, smtp: {{host: 127.0.0.1, port: {server.port}}}}}\n",
            encoding="utf-8",
        )
        runner = CliRunner(env=ENV)
        for args in (["import", str(EXAMPLES)], ["run", "--checkpoint", "2025-05"]):
            res = runner.invoke(main, [*args, "--config", str(cfg)], catch_exceptions=False)
            assert res.exit_code == 0, res.output
        (digest,) = [m.message for m in server.messages if m.message["X-Monitor-Unit"] == "302"]
    text = body_text(digest)
    html = body_text(digest, "html")
    url = re.search(r"（(http://127\.0\.0\.1:8650/u/[^）]+)）", text)
    assert url and url.group(1) in html
    client = TestClient(create_app(App(load_settings(cfg, env=ENV))))
    page = client.get(url.group(1).removeprefix("http://127.0.0.1:8650"))
    assert page.status_code == 200
    assert "葡萄酒产业宣传推介" in page.text  # unit 302's project
    assert "动物疫病强制免疫疫苗采购" not in page.text and "城市路灯维护" not in page.text  # nobody else's
