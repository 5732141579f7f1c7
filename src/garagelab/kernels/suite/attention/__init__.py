"""The attention suite: SDPA variants defined by FlexAttention-style score and mask functions."""
