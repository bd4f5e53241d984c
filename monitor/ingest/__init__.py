"""Files in (CSV, XLSX), validated rows out: the import stage."""
