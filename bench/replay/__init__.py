"""Recorded trials and the surrogate replay of searchers on them."""
