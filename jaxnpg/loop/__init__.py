"""jaxnpg.loop."""
