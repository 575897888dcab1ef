"""Searchers behind one interface and one name registry."""
