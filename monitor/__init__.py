"""budget-monitor: budget performance dual monitoring (预算绩效运行监控·双监控).

Import what units reported, evaluate the green/yellow/red rules at each checkpoint, store and show
the results. See README.md; the pipeline reads top to bottom in monitor/pipeline.py.
"""

__version__ = "0.1.0"
