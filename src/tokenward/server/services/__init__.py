"""Business rules of the server: no HTTP types here, only the context and plain values."""
