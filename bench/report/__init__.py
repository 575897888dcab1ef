"""RESULTS.md: collect from the store, statistics, sections, plots; the dashboard."""
