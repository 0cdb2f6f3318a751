"""People labeling texts: projects, the queue and claims, saves and undo, overlap,
pre-annotation, review, agreement, accounts, progress."""
