"""AudioServer: a self-hosted audio file server."""
