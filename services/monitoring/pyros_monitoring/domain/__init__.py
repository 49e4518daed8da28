"""monitoring's pure domain: the weather vote over several sources, device health (no I/O)."""
