"""Session files (``*.gwb``) and what is built on them.

- ``format``: the file itself: writing members atomically, reading them checked, migrating
  old versions. It knows the experiment spec, not the trainer.
- ``transfer``: copying hidden layers out of a saved session into a new network.
- ``trainer_io``: saving a ``Trainer`` to a session and restoring one from it.
- ``recovery``: the recovery copy written while a run trains.
- ``compare``: reading several sessions side by side (the Runs dock, ``sweep-report``).

The format and transfer sit below the trainer (it reads a session to reuse its layers);
``trainer_io``, ``recovery`` and ``compare`` sit above it. This ``__init__`` imports none of
them, so importing one does not drag in the others.
"""
