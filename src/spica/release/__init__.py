"""Release selection and stack planning (seed 3.2.1, 6.2)."""
