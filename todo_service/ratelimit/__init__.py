"""Rate limits per client and per account."""
