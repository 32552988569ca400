"""Access: API keys (stored hashed), per-key rate limits and budgets."""
