"""What every Linli service (node, hub, adapter service) shares at run time.

Settings, the database engine and migrations, structured logs, the HTTP
endpoints of the node protocol (health, readiness, metrics), request limits
and the GraphQL router with its error codes. It lives beside the schema
because node and hub never import each other.
"""
