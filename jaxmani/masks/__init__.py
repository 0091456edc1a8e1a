"""Background masks: image filters, histogram matching and the HM mask, FCN mask precompute."""
