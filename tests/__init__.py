"""jaxmani test suite."""
