"""The record store every source serves from: tables, queries and the read API's resolvers.

A community node, an adapter service and any other source keep records in
tables defined here (``define_tables``) and serve them through the same
GraphQL fields (``resolvers``). What the caller may see is decided by the
context's ``disclose`` hook, which the service implements with ``policies``.
"""
