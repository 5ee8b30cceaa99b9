"""Shared machinery: result types, the driver loop, the array boundary, operators."""
