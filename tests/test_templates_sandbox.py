"""Templates are content, not code (issue 17): an admin's override template that reaches for Python
(`cycler.__init__.__globals__.os.popen(...)`) is a `file:line` error in `monitor check`, and every
command that renders it (preview-mail, a run, the HTML report) refuses it clearly; the command never
runs. Mail, report and web templates all render in Jinja2's immutable sandbox."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import jinja2.exceptions
import jinja2.sandbox
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from monitor.app import App
from monitor.cli.main import main
from monitor.config.settings import load_settings
from monitor.db.engine import OUTBOX

EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"


def cli(workdir: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(workdir / "config.yaml")])


def payload(marker: Path) -> str:
    """A template line that, rendered outside a sandbox, runs a shell command creating `marker`."""
    return "{{ cycler.__init__.__globals__.os.popen('touch " + str(marker) + "').read() }}"


def override(workdir: Path, name: str, first_line: str) -> Path:
    """An override folder holding the shipped template `name` with `first_line` put in front of it."""
    folder = workdir / "override"
    target = folder / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shipped = (workdir / "templates" / name).read_text(encoding="utf-8")
    target.write_text(first_line + "\n" + shipped, encoding="utf-8")
    cfg = workdir / "config.yaml"
    text = cfg.read_text(encoding="utf-8")
    if "template_override_dir" not in text:
        cfg.write_text(text + "notifications:\n  template_override_dir: override\n", encoding="utf-8")
    return target


def outbox_count(workdir: Path) -> int:
    app = App(load_settings(workdir / "config.yaml"))
    with app.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(OUTBOX)).scalar_one()
    app.engine.dispose()
    return int(count)


@pytest.mark.parametrize("name", ["warning.body.txt", "summary.body.html", "admin.subject.txt"])
def test_monitor_check_refuses_an_override_template_that_reaches_for_python(workdir: Path, name: str) -> None:
    marker = workdir / "pwned"
    target = override(workdir, name, "见附件 " + payload(marker))
    res = cli(workdir, "check")
    assert res.exit_code == 1, res.output
    assert f"{target}:1: unsafe template: " in res.output, res.output
    assert "Traceback" not in res.output
    assert not marker.exists()  # the command never ran


def test_a_run_and_preview_mail_refuse_the_template_and_queue_nothing(workdir: Path) -> None:
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    assert cli(workdir, "run", "--checkpoint", "2025-05", "--no-send").exit_code == 0
    queued = outbox_count(workdir)
    marker = workdir / "pwned"
    target = override(workdir, "warning.body.html", payload(marker))
    out = workdir / "preview"
    res = cli(workdir, "preview-mail", "--checkpoint", "2025-05", "--out", str(out))
    assert res.exit_code == 1, res.output
    assert f"{target}:1: unsafe template: " in res.output and not isinstance(
        res.exception, jinja2.TemplateError
    )
    assert not marker.exists() and not (out.exists() and list(out.iterdir()))  # nothing written
    res = cli(workdir, "run", "--checkpoint", "2025-08", "--no-send")
    assert res.exit_code == 1, res.output
    assert f"{target}:1: unsafe template: " in res.output and not isinstance(
        res.exception, jinja2.TemplateError
    )
    assert not marker.exists()
    assert outbox_count(workdir) == queued  # nothing queued


def test_the_html_report_refuses_an_unsafe_override(workdir: Path) -> None:
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    assert cli(workdir, "run", "--checkpoint", "2025-05", "--no-send").exit_code == 0
    marker = workdir / "pwned"
    target = override(workdir, "report/checkpoint.html", payload(marker))
    res = cli(workdir, "check")
    assert res.exit_code == 1 and f"{target}:1: unsafe template: " in res.output, res.output
    report = workdir / "r.html"
    res = cli(workdir, "report", "--checkpoint", "2025-05", "--format", "html", "--out", str(report))
    assert res.exit_code != 0 and not report.exists()
    assert not marker.exists()


def test_every_template_environment_is_a_sandbox(workdir: Path) -> None:
    from monitor.reports.html import _environment
    from monitor.web.site import Site

    app = App(load_settings(workdir / "config.yaml"))
    envs = [
        app.templates().env,
        _environment(workdir / "templates", None),
        Site.make(app, lambda: dt.datetime.now(dt.UTC)).env,
    ]
    for env in envs:
        assert isinstance(env, jinja2.sandbox.ImmutableSandboxedEnvironment)
        with pytest.raises(jinja2.exceptions.SecurityError):
            env.from_string("{{ cycler.__init__.__globals__ }}").render()
