"""The read API every source speaks: GraphQL types, filters and pagination."""
