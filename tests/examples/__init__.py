"""Tests that run the examples in examples/ against a real shoal."""
