"""Sub-commands of the CLI: thin adapters from parsed arguments to the package."""
