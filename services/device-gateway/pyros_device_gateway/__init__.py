"""pyros_device_gateway."""
