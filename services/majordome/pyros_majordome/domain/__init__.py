"""majordome's pure logic: the night state table and what to dispatch next (no bus, no clock)."""
