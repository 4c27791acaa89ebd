"""The labs' computations, one module per lab of the window's Labs menu (``workbench/labs``
mirrors this folder): the initialization explorer, the learning-rate finder and the
optimizer race. Each is a plain function with ``progress`` and ``should_stop`` callbacks."""
