"""One home per AstrOmatic tool: option formatting, the run, the output readers."""
