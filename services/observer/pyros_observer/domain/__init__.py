"""The observer's own pure logic: sequence execution as data, the data layout."""
