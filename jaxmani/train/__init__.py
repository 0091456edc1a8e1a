"""Training: state, the pure step, the loop, checkpoints, DAMSM pretraining."""
