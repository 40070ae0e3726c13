"""The community data node: its own records, its staff's writes, policy on every read by others."""
