"""The district hub: source registry, federated GraphQL API, authorization server, flag workflow."""
