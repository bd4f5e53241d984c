"""Rule files in, a validated RuleSet and per-project policies out."""
