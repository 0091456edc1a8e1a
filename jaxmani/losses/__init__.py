"""Loss terms: pure functions on arrays. Losses never import models."""
