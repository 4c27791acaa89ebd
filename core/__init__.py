"""Gradient Workbench engine: a NumPy worked version of chapter 11 of Géron's
*Hands-On Machine Learning* ("Training Deep Neural Networks").

NumPy only; never imports Qt. Everything it needs is passed in (no global state, no
global randomness).
"""

__version__ = "0.1.0"
