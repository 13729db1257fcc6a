"""The shared vocabulary under every domain: entity types, external references, what a service
touched, advisory locks, webhook signing, paging and serializing. It imports no domain."""
