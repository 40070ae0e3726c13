"""`linli demo`: a whole district on one machine: the hub, community nodes and seeded data."""
