"""One module per CLI command; `neuralc.cli` only parses arguments and dispatches."""
