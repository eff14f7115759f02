"""The metadata store: audio rows and accounts."""
