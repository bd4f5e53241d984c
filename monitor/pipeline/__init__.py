"""A checkpoint run, top to bottom, as in the design diagram:
load inputs → evaluate (pure) → store results → decide who is told what (pure) → compose messages
→ queue them in the outbox (persisted) → deliver. Each stage is a call to a small module; no stage
calls the next one itself. The scheduler and the CLI only call `run_checkpoint` and `deliver`.

A run holds its checkpoint's claim (`run_lock`, monitor.db.claims) from start to queueing, whoever calls it:
a second run of the checkpoint waits or is refused (Busy). It is two transactions: the evaluation
stores the results (run `evaluated`), then the cases are opened, the messages queued and the run marked
`finished` together. A run stopped in between is completed by `complete_pending` (`monitor send`, the
service's reconcile).
"""
