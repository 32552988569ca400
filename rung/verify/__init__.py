"""Verify: judges that look at a tier's answer and say how likely it is wrong."""
