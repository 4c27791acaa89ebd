"""The headless command line of ``gradient-workbench``.

- ``args``: exit statuses, ``UsageError``, the one-line parser and the argument types,
  shared by the two modules below.
- ``main``: the parser, ``train``, ``resume``, ``info`` and ``run_headless``.
- ``commands``: ``sweep``, ``sweep-report`` and ``export``.
"""
