"""Rate limits: token buckets per client and budget."""
