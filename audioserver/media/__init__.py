"""Reading untrusted audio: the parser worker pool and what runs inside it."""
