"""Generic record storage and GraphQL API: one implementation for every record type."""
