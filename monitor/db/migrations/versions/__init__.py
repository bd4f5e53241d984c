"""Migration revisions, one file each, applied in order by monitor.db.migrate (never edit a shipped one)."""
