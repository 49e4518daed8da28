"""pyros_majordome."""
