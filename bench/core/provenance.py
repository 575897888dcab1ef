"""What a recorded measurement ran on: package versions and the machine.

Every study the benchmark writes carries both, so a figure in RESULTS.md can be traced
to the software and hardware that produced it.
"""
from __future__ import annotations

import os
import platform
from importlib import metadata

_VERSIONED = ("tensorflow-cpu", "tensorflow", "keras", "keras-tuner", "optuna",
              "optuna-dashboard", "tensorboard", "numpy", "sqlalchemy")


# the Keras backend's own packages, recorded where a run trains on that backend
_BACKEND_VERSIONED = {"jax": ("jax", "jaxlib"), "torch": ("torch",)}


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in _VERSIONED + _BACKEND_VERSIONED.get(os.environ.get("KERAS_BACKEND", ""), ()):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return found


def machine() -> str:
    import psutil
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, no GPU used")
