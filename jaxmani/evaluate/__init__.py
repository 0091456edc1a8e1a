"""Evaluation: the paper's metrics, FID/IS, `jaxmani evaluate` and `jaxmani report`."""
