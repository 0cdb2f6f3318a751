"""Files in and out: the format registry, reading and export, imports and their staging,
predictions written to files."""
