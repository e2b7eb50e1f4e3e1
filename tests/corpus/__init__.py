"""Bad inputs and reruns (issue 11): the corruption corpus and the small clean surveys."""
