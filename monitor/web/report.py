"""The unit's reporting page (填报), reached by the signed link of its reporting notice /r/<token>:
every project of the unit with its budget and indicators (read-only) and the fields of the official
form, pre-filled; save a draft, submit (送审); beside each project the light its numbers would get,
live as it types (POST /r/<token>/light, JSON) and after every save without JavaScript; or upload the
filled workbook instead of typing (POST /r/<token>/upload, monitor.ingest.upload). Database and
evaluation work runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from monitor.cases.rectification import CAUSES, MEASURES
from monitor.core import links
from monitor.core.model import Checkpoint
from monitor.core.wording import light, period, wan
from monitor.core.workdays import chinese_date
from monitor.db.inputs import load_units
from monitor.ingest import reporting, upload
from monitor.ingest.extensions import deadline_of, extensions
from monitor.ingest.prospect import Prospect, prospect, prospects
from monitor.notify.messages import report_deadline
from monitor.rules.policy import Policies
from monitor.web import auth
from monitor.web import upload as posted_file
from monitor.web.signed import SignedPages, form_values
from monitor.web.site import STALE_FORM

SCRIPT = (Path(__file__).parent / "report.js").read_text(encoding="utf-8")
POSSIBILITIES = ("确定能", "有可能", "完全不可能")


def prospect_view(p: Prospect) -> dict[str, object]:
    return {**light(p.light or "na"), "light": p.light, "words": p.words, "reasons": list(p.reasons)}


@dataclass(frozen=True)
class ReportPages(SignedPages):
    def _policies(self) -> Policies:
        return Policies(self.site.app.rules())

    def page(
        self,
        request: Request,
        token: str,
        scope: links.Scope,
        forms: list[reporting.ProjectForm],
        status: int = 200,
        refused: list[str] | None = None,
    ) -> HTMLResponse:
        site = self.site
        with site.app.engine.connect() as conn:
            units = load_units(conn, {scope.unit_code})
            granted = extensions(conn, scope.checkpoint)
        cp = Checkpoint.parse(scope.checkpoint)
        due = deadline_of(scope.unit_code, report_deadline(site.app.settings, cp), granted)
        live = prospects(self._policies(), cp, forms, units)
        unit = units.get(scope.unit_code)
        views = [
            {
                "form": f,
                "budget": wan(f.project.budget),
                "state_word": reporting.STATE_WORDS[f.state],
                "prospect": prospect_view(live[f.project.code]),
                "key": reporting.key,
            }
            for f in forms
        ]
        context = {
            "token": token,
            "unit_name": unit.name if unit else scope.unit_code,
            "period": period(scope.checkpoint),
            "month": cp.month,
            "deadline": chinese_date(due),
            "extended": granted.get(scope.unit_code),
            "projects": views,
            "causes": CAUSES,
            "measures": MEASURES,
            "possibilities": POSSIBILITIES,
            "saved": request.query_params.get("ok"),
            "uploaded": request.query_params.get("n"),
            "refused": refused or [],
            "max_mb": upload.MAX_BYTES >> 20,
            "has_errors": any(f.errors for f in forms),
        }
        return site.page(request, "report.html", context, status)

    def show(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            scope = self.scope_of(token)
        except links.BadLink as exc:
            return self.bad_link(request, exc)
        with self.site.app.engine.connect() as conn:
            forms = reporting.load_forms(conn, scope.checkpoint, scope.unit_code)
        return self.page(request, token, scope, forms)

    def act(self, request: Request, token: str, scope: links.Scope, fields: Mapping[str, str]) -> Response:
        """保存草稿 or 送审; the drafts are committed before the page answers."""
        site, by = self.site, f"unit:{scope.unit_code}"
        if not auth.csrf_ok(request.session, fields.get("csrf")):
            return site.message(request, "无法提交", STALE_FORM, 403)
        if fields.get("action") == "submit":
            forms = reporting.submit(
                site.app.engine,
                scope.checkpoint,
                scope.unit_code,
                fields,
                site.now(),
                by,
                site.app.settings.reporting.counts_when,
            )
            if any(f.errors for f in forms):
                return self.page(request, token, scope, forms, 400)
            return RedirectResponse(f"/r/{token}?ok=submitted", status_code=303)
        with site.app.engine.begin() as conn:
            forms = reporting.load_forms(conn, scope.checkpoint, scope.unit_code)
            reporting.save(conn, scope.checkpoint, forms, fields, site.now(), by)
        return RedirectResponse(f"/r/{token}?ok=saved", status_code=303)

    def judge(self, request: Request, scope: links.Scope, fields: Mapping[str, str]) -> Response:
        """The light one project's fields (as typed, not saved) would get."""
        if not auth.csrf_ok(request.session, fields.get("csrf")):
            return JSONResponse({"error": STALE_FORM}, status_code=403)
        with self.site.app.engine.connect() as conn:
            forms = reporting.load_forms(conn, scope.checkpoint, scope.unit_code)
            units = load_units(conn, {scope.unit_code})
        form = next((f for f in forms if f.project.code == fields.get("project")), None)
        if form is None:
            return JSONResponse({"error": "没有找到这个项目，或它不属于本单位。"}, status_code=404)
        form.values.update(reporting.fields_of(form, fields))
        cp = Checkpoint.parse(scope.checkpoint)
        seen = prospect(self._policies(), cp, form, units.get(scope.unit_code))
        return JSONResponse(prospect_view(seen))

    def take(
        self, request: Request, token: str, scope: links.Scope, fields: Mapping[str, str], file: object
    ) -> Response:
        """The uploaded workbook: kept under a name of our own, checked and imported (送审), or the page
        with every problem and nothing written."""
        if not auth.csrf_ok(request.session, fields.get("csrf")):
            return self.site.message(request, "无法提交", STALE_FORM, 403)
        if not isinstance(file, UploadFile) or not posted_file.shown_name(file):
            return self.refuse(request, token, scope, ["请选择要上传的文件（.xlsx 或 .csv）。"])
        if posted_file.suffix_of(file) not in upload.SUFFIXES:
            name = posted_file.shown_name(file)
            return self.refuse(
                request, token, scope, [f"“{name}”：只接受 .xlsx 或 .csv 文件，请另存后再上传。"]
            )
        site, by = self.site, f"unit:{scope.unit_code}"
        with tempfile.TemporaryDirectory(prefix="monitor-upload-") as tmp:
            path = posted_file.keep(file, Path(tmp), upload.MAX_BYTES)
            if path is None:
                return self.too_large(request)
            sent = (path, posted_file.shown_name(file))
            counts_when = site.app.settings.reporting.counts_when
            try:
                done = upload.submit_file(
                    site.app.engine, scope.checkpoint, scope.unit_code, sent, site.now(), by, counts_when
                )
            except upload.Refused as exc:
                return self.refuse(
                    request, token, scope, [f"“{sent[1]}”未导入，未写入任何数据：", *exc.lines()]
                )
        return RedirectResponse(f"/r/{token}?ok=uploaded&n={len(done)}", status_code=303)

    def refuse(self, request: Request, token: str, scope: links.Scope, lines: list[str]) -> HTMLResponse:
        with self.site.app.engine.connect() as conn:
            forms = reporting.load_forms(conn, scope.checkpoint, scope.unit_code)
        return self.page(request, token, scope, forms, 400, lines)

    def too_large(self, request: Request) -> HTMLResponse:
        text = (
            f"上传的文件超过 {upload.MAX_BYTES >> 20} MB，未导入。监控表通常不到 1 MB，请检查是否选错了文件。"
        )
        return self.site.message(request, "文件过大", text, 413)

    async def upload(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            scope = self.scope_of(token)
        except links.BadLink as exc:
            return await run_in_threadpool(self.bad_link, request, exc)
        try:
            form = await posted_file.read_form(request, upload.MAX_BYTES)
        except posted_file.TooLarge:
            return await run_in_threadpool(self.too_large, request)
        except posted_file.Malformed:
            return await run_in_threadpool(
                self.site.message, request, "无法上传", "上传内容不完整，请重试。", 400
            )
        try:
            fields = form_values(form.multi_items())
            return await run_in_threadpool(self.take, request, token, scope, fields, form.get("file"))
        finally:
            await form.close()

    async def get(self, request: Request) -> Response:
        return await run_in_threadpool(self.show, request)

    async def post(self, request: Request) -> Response:
        return await self.posted(request, self.act)

    async def light(self, request: Request) -> Response:
        try:
            scope = self.scope_of(request.path_params["token"])
        except links.BadLink:
            return JSONResponse({"error": "此链接无效或已过期。"}, status_code=403)
        fields = form_values((await request.form()).multi_items())
        return await run_in_threadpool(self.judge, request, scope, fields)

    async def script(self, request: Request) -> Response:
        return Response(SCRIPT, media_type="text/javascript", headers={"Cache-Control": "no-cache"})
