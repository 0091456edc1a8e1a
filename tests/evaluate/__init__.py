"""Tests of jaxmani.evaluate."""
