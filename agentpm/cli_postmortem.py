"""`agentpm new`, `agentpm lint`, `agentpm similar` (registered on the main app)."""
