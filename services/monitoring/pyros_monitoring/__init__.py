"""pyros_monitoring."""
