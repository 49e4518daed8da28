"""pyros_simulators."""
