"""pyros_gateway."""
