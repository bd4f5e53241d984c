"""config.yaml and YAML files in: typed Settings, values that remember their file:line."""
