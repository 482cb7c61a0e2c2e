"""Everything that knows HTTP, GraphQL, the CLI, and how the pieces are wired together."""
