"""The web pages of issue 8: `app.py` (the Starlette application: unit pages and the login), `board.py`
(the bureau board and its routes, all behind the login), `project.py` (drill-down to a project's
explanation and case history), `records.py` (deliveries, exemptions, reports), `queries.py` (the board's
read-only SQL), `site.py` (rendering, headers, view models), `auth.py` (signed unit links, bureau users,
login limiting, CSRF) and `cases.py` (warning cases in the database).
"""
