"""What the read API shows: plain serializations, keyset pagination and the queries."""
