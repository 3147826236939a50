"""The kernels that execute the chapters encrypt their connection, so their logs stay clean.

ipykernel 7 warns on every start, "Kernel is running over TCP without encryption", unless the
kernel manager that starts it hands it CurveZMQ keys. jupyter_client 8.10 can do so
(`KernelManager.transport_encryption`: "auto" provisions keys when the kernelspec declares
support, as ipykernel's does), but its default is "disabled", and neither myst-nb nor nbval
lets a book pass it to the managers they create. So the processes that start the kernels (the
book build, through this Sphinx extension; pytest, through tests/conftest.py) make "auto" the
default of their kernel managers. The warning goes away because the connection is encrypted,
not because a warning is hidden; every other message of the kernels still shows. With an
older jupyter_client, or a pyzmq built without CurveZMQ, nothing changes (older ipykernels do
not warn). Scripts that create their own `NotebookClient` pass the setting instead
(`tools/check_seeds.py`, `benchmarks/bench_chapters.py`).
"""

from __future__ import annotations


def encrypt_kernel_connections() -> bool:
    """Make "auto" the default transport encryption of this process's kernel managers.

    Returns whether kernels started from now on get CurveZMQ keys.
    """
    try:
        import zmq
        from jupyter_client.manager import KernelManager
    except ImportError:
        return False
    trait = KernelManager.class_traits().get("transport_encryption")
    if trait is None or not zmq.has("curve"):
        return False
    trait.default_value = "auto"
    return True


def setup(app):
    encrypt_kernel_connections()
    return {"parallel_read_safe": True, "parallel_write_safe": True}
