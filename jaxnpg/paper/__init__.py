"""jaxnpg.paper."""
