"""Reloading the service: the config file, the rules and the templates in (on SIGHUP, or when a watched
file's modification time changed); a new `State` swapped in atomically when all of it is valid, else the
old one kept, the rejection recorded in `service_event` and e-mailed to the admins.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from monitor.config.yamlfile import Invalid
from monitor.deliver import outbox
from monitor.notify import messages, views
from monitor.notify.decide import Notice, Recipient
from monitor.notify.render import TemplateErrors
from monitor.service.base import load_state, log
from monitor.service.duties import Duties


class Reloading(Duties):
    """Watching the files and swapping the state."""

    _fingerprint: tuple[tuple[str, float], ...]

    def _files_fingerprint(self) -> tuple[tuple[str, float], ...]:
        s = self.state.app.settings
        paths = [self.config_path, *sorted(s.rules_dir.glob("*.y*ml")), *sorted(s.templates_dir.glob("*.*"))]
        if s.template_override_dir:
            paths += sorted(s.template_override_dir.glob("*.*"))
        return tuple((str(p), p.stat().st_mtime) for p in paths if p.exists())

    def reload(self, why: str) -> bool:
        """Validate everything first; swap atomically if valid, else keep the old state, tell the admins."""
        old = self.state
        self._fingerprint = self._files_fingerprint()
        try:
            new = load_state(self.config_path, self.rules_dir, self.clock, old.app.engine)
        except (Invalid, TemplateErrors) as exc:
            errors = [str(p) for p in exc.problems]
            for e in errors:
                log.error("reload (%s) rejected: %s", why, e)
            log.error("reload rejected: still using rules %s", old.rules.hash[:12])
            self._record("reload", False, old.rules.hash, "\n".join(errors))
            self._mail_admins(errors)
            return False
        self.state = new
        self._fingerprint = self._files_fingerprint()
        self._record("reload", True, new.rules.hash, why)
        log.info("reload (%s) ok: rules %s", why, new.rules.hash[:12])
        if self.scheduler is not None:
            self.plan()
        return True

    def _mail_admins(self, errors: list[str]) -> None:

        app = self.state.app
        admins = app.settings.mail.admin_recipients
        if not admins:
            return
        at = self.clock().astimezone(self.tz).isoformat(timespec="seconds")
        view = views.admin(
            errors,
            self.instance,
            at,
            self.state.rules.hash,
            str(self.config_path),
            str(app.settings.rules_dir),
        )
        notice = Notice(
            "admin",
            "reload_failed",
            None,
            tuple(Recipient("", a) for a in admins),
            (),
            {"errors": errors, "at": at},
            view,
        )
        row = messages.compose(notice, "admin", self.state.templates, app.settings, self.clock())
        try:
            with app.engine.begin() as conn:
                outbox.queue(conn, [row])
        except IntegrityError:  # the other instance queued its own mail about this reload at the same moment
            log.warning("the admins are told of this rejected reload by another instance's e-mail")
            return
        self.deliver()
