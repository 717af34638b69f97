"""The auth server: an ASGI app (FastAPI) over the token core and a Store."""
