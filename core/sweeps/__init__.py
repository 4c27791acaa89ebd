"""Sweeps: many experiments from one base and a grid of changes.

- ``spec``: the sweep file, parsed and checked (``load_sweep``, ``parse_sweep``).
- ``runner``: running its runs in worker processes or on a Dask cluster, resumably.
- ``report``: the results table of a sweep's folder.
"""
