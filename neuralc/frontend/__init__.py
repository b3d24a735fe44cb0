"""Frontend: the textX grammar of the Neural DSL and the AST it produces."""
