"""SIE and the other methods on one training loop, their evaluation with the paper's protocols, and the backbones.

Nothing is imported here, so that reading the method registry (`iebench.baselines.methods.METHODS`) loads no torch.
"""
