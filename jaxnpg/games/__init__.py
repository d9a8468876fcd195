"""jaxnpg.games."""
