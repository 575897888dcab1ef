"""The Keras 3 backend a command runs on: ``--backend tensorflow|jax|torch``.

Keras reads ``KERAS_BACKEND`` once, when it is first imported, so the backend is chosen
and checked here before anything imports Keras, and set in the environment, where the
run's trial processes and workers find it too. A Keras user's ``KERAS_BACKEND`` is
honoured when ``--backend`` is not given; the two disagreeing is a mistake, said in one
line before anything is created.
"""
from __future__ import annotations

import importlib.util
import os
import sys

from bench.core.errors import UserError

DEFAULT = "tensorflow"
# backend -> (the module it needs, the project's extra that installs it)
BACKENDS: dict[str, tuple[str, str]] = {
    "tensorflow": ("tensorflow", ""),
    "jax": ("jax", "jax"),
    "torch": ("torch", "torch"),
}


def check_name(name: str) -> str:
    if name not in BACKENDS:
        raise UserError(f"--backend {name!r}: choose from {', '.join(BACKENDS)}")
    return name


def resolve(flag: str | None) -> str:
    """The backend to run on: ``--backend``, else ``KERAS_BACKEND``, else TensorFlow."""
    env = os.environ.get("KERAS_BACKEND") or None
    if flag is not None and env is not None and flag != env:
        raise UserError(f"--backend {flag} disagrees with KERAS_BACKEND={env} in the "
                        f"environment: give one of them (unset KERAS_BACKEND, or run with "
                        f"--backend {env})")
    return check_name(flag or env or DEFAULT)


def name_tag(name: str) -> str:
    """What a study or record name carries for its backend: nothing for TensorFlow (the
    names it always had), else the backend (``toon-optuna-jax-s0``)."""
    return "" if name == DEFAULT else name


def check_installed(name: str) -> str:
    module, extra = BACKENDS[check_name(name)]
    if importlib.util.find_spec(module) is None:
        how = f"pip install -e '.[{extra}]'" if extra else "pip install -e ."
        raise UserError(f"--backend {name}: {module} is not installed ({how})")
    return name


def select(flag: str | None) -> str:
    """Resolve, check that it is installed and that Keras is not already on another
    backend, then set ``KERAS_BACKEND`` for this process and its children."""
    name = check_installed(resolve(flag))
    keras = sys.modules.get("keras")
    if keras is not None:
        current = keras.backend.backend()
        if current != name:
            raise UserError(f"--backend {name}: Keras was already imported on {current} in "
                            "this process (a backend is fixed when Keras is first imported)")
    os.environ["KERAS_BACKEND"] = name
    return name


def thread_env(name: str, threads: int) -> dict[str, str]:
    """Environment for a worker process of ``threads`` threads: JAX's XLA reads its thread
    count only when jax is imported, so it is set before the process starts."""
    if name != "jax":
        return {}
    flags = os.environ.get("XLA_FLAGS", "")
    return {"XLA_FLAGS": f"{flags} --xla_cpu_multi_thread_eigen=false "
                         f"intra_op_parallelism_threads={threads}".strip()}


def limit_threads(name: str, threads: int) -> None:
    """A worker's share of the cores, on its backend's own thread pools. TensorFlow and
    PyTorch take it at run time; JAX's comes from :func:`thread_env`, set before the
    worker started."""
    if name == "tensorflow":
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    elif name == "torch":
        import torch
        torch.set_num_threads(threads)
