"""The evaluation protocol: every method scored by the same downstream CTR model on frozen z."""
