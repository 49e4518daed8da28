"""pyros_analyzer."""
