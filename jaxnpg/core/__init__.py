"""jaxnpg.core."""
