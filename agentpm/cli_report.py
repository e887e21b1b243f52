"""`agentpm trends`, `agentpm report` (registered on the main app)."""
