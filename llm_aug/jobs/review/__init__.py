"""Human review of an ``augment`` run: decisions log, review items, agreement, export, the local app."""
