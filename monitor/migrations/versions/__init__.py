"""Migration revisions, one file each, applied in order by monitor.migrate (never edit a shipped one)."""
