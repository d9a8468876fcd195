"""jaxnpg.sweeps."""
