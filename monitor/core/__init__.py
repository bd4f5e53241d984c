"""Plain data and small pure helpers every stage uses: the model, wording, working days, safe names."""
