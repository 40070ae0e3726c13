"""Adapters: one package per government system, translated to and from the common schema."""
