"""Leaving the workbench: an experiment or session written for another framework.

``pytorch``: a self-contained PyTorch script that builds and trains the same network."""
