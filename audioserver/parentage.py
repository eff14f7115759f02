"""Child processes that do not outlive their parent (Linux only).

A serving worker or a parser left behind by a kill -9 would hold the port,
or decode on for minutes with nobody waiting for the answer.
"""

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> None:
    """Have the kernel send `sig` to this process when its parent exits."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, sig)
    except (OSError, AttributeError):
        return
    # The parent may have died before the line above: nothing would come then.
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), sig)
