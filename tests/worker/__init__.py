"""Test package (packages keep same-named conftest modules apart)."""
