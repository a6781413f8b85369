"""Implementations a user might write, correct and deliberately buggy, for the checks."""
