"""The engine: chapter 11's mathematics in NumPy, one equation per function.

One module per family, each with its registry keyed by the experiment's names
(``activations``, ``initializers``, ``losses``, ``optimizers``, ``schedules``), plus the
pieces they are built from (``registry``, ``component``, ``validation``), the layers and
the network they make (``layers``, ``network``), the regularizers (``regularization``) and
what is measured while training (``diagnostics``: the recorder and the health detector).

The engine knows nothing of files, data sources, sessions, labs, sweeps, export or the
command line; those sit above it (the import-linter contracts in ``pyproject.toml``).
"""
