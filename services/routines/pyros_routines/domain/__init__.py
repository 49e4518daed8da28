"""Routines' own pure logic (no SQL, no HTTP): what is not a word of the shared domain."""
