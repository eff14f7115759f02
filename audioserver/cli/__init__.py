"""The command line's commands: serve, import, user and token."""
