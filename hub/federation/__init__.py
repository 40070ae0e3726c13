"""Federation: the hub answers one GraphQL query from every source at once."""
