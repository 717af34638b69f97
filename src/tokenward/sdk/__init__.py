"""Resource-server side: remote JWKS, verifier facade and framework adapters."""
