"""Names and persistence every layer shares: errors, study names, the store, run locks."""
