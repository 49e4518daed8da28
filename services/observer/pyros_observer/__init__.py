"""pyros_observer."""
