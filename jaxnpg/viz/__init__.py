"""jaxnpg.viz."""
