"""Where processed results go: key layout, Parquet settings, sinks."""
