"""The unit page reached by a signed link /u/<token>: the unit's projects, lights and reasons, an answer
form per open or returned warning and the history of its answers. Site and link secret in, the GET
and POST endpoints out; their database and template work runs in a worker thread, never on the event
loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from monitor.cases import rectification as rc
from monitor.cases import store as cases
from monitor.cases.rectification import CAUSES
from monitor.core import links
from monitor.core.wording import period
from monitor.db.inputs import load_units
from monitor.evaluate.stored import load_results
from monitor.web import auth
from monitor.web.signed import SignedPages
from monitor.web.site import STALE_FORM, project_view


@dataclass(frozen=True)
class UnitPages(SignedPages):
    def page(
        self,
        request: Request,
        token: str,
        scope: links.Scope,
        errors: Mapping[int, list[str]] | None = None,
        values: Mapping[str, str] | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        site = self.site
        with site.app.engine.connect() as conn:
            units = load_units(conn)
            results = load_results(conn, scope.checkpoint, unit=scope.unit_code)
            its = [
                site.case_view(c)
                for c in cases.cases(conn, unit_code=scope.unit_code)
                if c["checkpoint"] <= scope.checkpoint
            ]
        unit = units.get(scope.unit_code)
        return site.page(
            request,
            "unit.html",
            {
                "token": token,
                "unit_name": unit.name if unit else scope.unit_code,
                "unit_code": scope.unit_code,
                "period": period(scope.checkpoint),
                "projects": [project_view(r) for r in results],
                "cases": its,
                "causes": CAUSES,
                "measures": rc.MEASURES,
                "errors": errors or {},
                "values": values or {},
                "thanks": request.query_params.get("ok") == "1",
                "today": site.today().isoformat(),
            },
            status,
        )

    def show(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            scope = self.scope_of(token)
        except links.BadLink as exc:
            return self.bad_link(request, exc)
        return self.page(request, token, scope)

    def submit(self, request: Request, token: str, scope: links.Scope, fields: dict[str, str]) -> Response:
        """Record the unit's answer to one of its warnings (committed before the page says thanks)."""
        site = self.site
        if not auth.csrf_ok(request.session, fields.get("csrf")):
            return site.message(request, "无法提交", STALE_FORM, 403)
        try:
            case_id = int(fields.get("case_id", ""))
        except ValueError:
            return site.message(request, "无法提交", "表单不完整，请刷新页面后重新填写。", 400)
        answer = rc.parse_answer(fields, site.today())
        if isinstance(answer, list):
            return self.page(request, token, scope, {case_id: answer}, fields, 400)
        try:
            with site.app.engine.begin() as conn:
                case = cases.get_case(conn, case_id)
                if (
                    case is None
                    or case["unit_code"] != scope.unit_code
                    or case["checkpoint"] > scope.checkpoint
                ):
                    raise LookupError(case_id)
                cases.submit_answer(conn, case_id, scope.unit_code, answer, site.now())
        except LookupError:
            return site.message(request, "无法提交", "没有找到这项预警，或它不属于本单位。", 404)
        except rc.IllegalTransition as exc:
            return self.page(request, token, scope, {case_id: [f"{exc}。"]}, fields, 409)
        return RedirectResponse(f"/u/{token}?ok=1#case-{case_id}", status_code=303)

    async def get(self, request: Request) -> Response:
        return await run_in_threadpool(self.show, request)

    async def post(self, request: Request) -> Response:
        return await self.posted(request, self.submit)
