"""Reports of a checkpoint: stored results in; the Excel warning list (预警清单, `excel.py`) and the HTML
checkpoint report with charts (监控报告, `html.py`) out, both drawn from `data.load` and written by
`write.py`, with trends (`trend.py`) and results application (`application.py`) computed by pure
functions. The package itself defines nothing: import from its modules.
"""
