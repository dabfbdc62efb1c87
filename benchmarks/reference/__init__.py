"""Reference servers for the request-overhead comparison."""
