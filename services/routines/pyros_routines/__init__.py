"""pyros_routines."""
