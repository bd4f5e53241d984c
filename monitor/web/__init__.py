"""The web pages of issue 8: `app.py` (Starlette routes, server-rendered from templates/web/), `auth.py`
(signed unit links, bureau users, login limiting, CSRF) and `cases.py` (warning cases in the database).
"""
