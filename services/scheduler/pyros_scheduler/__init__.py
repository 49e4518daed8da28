"""pyros_scheduler."""
