"""jaxnpg.dynamics."""
