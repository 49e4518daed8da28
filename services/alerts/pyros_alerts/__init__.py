"""pyros_alerts."""
