"""The loop's policy: planning (rule and LLM planners), correction strategies, generation, best-candidate
selection, stop rules, the run report, and the graph state types the nodes in `graphs/` share."""
