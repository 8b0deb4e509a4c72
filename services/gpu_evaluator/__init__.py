"""The GPU evaluator: golden suites, structured outputs, baseline comparison, load."""
