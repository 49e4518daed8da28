"""The ``pyros`` command line: runs services, the all-in-one mode and the admin tools."""
