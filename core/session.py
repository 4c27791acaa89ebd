"""Old import path, kept for users' scripts and notebooks: ``core.session`` was split into
``core.sessions.format`` (the file) and ``core.sessions.trainer_io`` (saving and restoring a
trainer). New code imports from those."""

from core.sessions.format import (  # noqa: F401
    FORMAT,
    MEMBERS,
    REQUIRED,
    VERSION,
    Session,
    SessionError,
    atomic_write,
    check_arrays,
    load_session,
    migrate,
    peek_session,
    remove_stale_temporaries,
    session_members,
    write_session,
)
from core.sessions.trainer_io import (  # noqa: F401
    Snapshot,
    restore_trainer,
    save_trainer,
    take_snapshot,
    trainer_arrays,
    write_snapshot,
)
