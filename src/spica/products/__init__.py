"""Release-product summaries and thumbnails."""
