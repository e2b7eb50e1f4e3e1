"""Step 1, the data-ingestion context (seed 2.1, 3.1): QualityFITS-in."""
