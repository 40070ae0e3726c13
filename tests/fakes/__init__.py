"""Fake upstream servers the tests talk to over real HTTP."""
