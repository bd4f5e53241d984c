"""The evaluation: inputs and policies in, lights with their reasons out."""
