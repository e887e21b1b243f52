"""Post-mortem tools, on records: scaffolding new post-mortems and linting them."""
