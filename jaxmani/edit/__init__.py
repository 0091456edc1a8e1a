"""Editing your own images with a sentence: the Manipulator API and `jaxmani manipulate`."""
