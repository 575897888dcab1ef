"""Keras's input pipeline for array data, built once per search instead of once per trial.

``model.fit(x, y, validation_data=(xv, yv))`` with NumPy arrays builds a ``tf.data``
pipeline on every call: it copies the arrays into tensors and traces the pipeline's
functions (`bench overhead`: the largest part of "model.fit outside its epochs", about
0.08 s of a quick trial's overhead, and once more for the validation data inside the first
epoch), and ends every other fit waiting up to half a second for ``tf.data``'s autotuning
thread. KerasTuner calls ``fit`` once per trial; :class:`ArrayPipeline` builds both
datasets once, without autotuning, and every trial's ``fit`` iterates them.

The batches are Keras's: ``batch_size`` (default 32) with the last, partial batch kept;
validation in order, batched by ``validation_batch_size or batch_size``; ``shuffle=False``
in order. ``shuffle=True`` draws a uniformly random permutation for every ``fit`` the way
Keras's own pipeline does: fixed by TensorFlow's global seed when one is set (then, as in
Keras, the same order every epoch of that fit), a new one every epoch when none is. The
order is not bit-for-bit Keras's (its permutation depends on how TensorFlow numbers the
operations of a freshly traced graph), but it depends on the same thing, the seed set
when the trial starts, so a trial trains the same way in any process that runs it.

Only the plain case is taken over: NumPy ``x`` and ``y``, no ``sample_weight``,
``class_weight``, ``validation_split`` or ``steps_per_epoch``, a hypermodel that does not
override ``HyperModel.fit`` (it may tune ``batch_size`` there) in a tuner whose
``run_trial`` is not overridden either (``OptunaSearch`` checks), the TensorFlow backend.
Anything else reaches ``model.fit`` exactly as given.
"""
from __future__ import annotations

import inspect
import math
import secrets
from typing import Any, TypeGuard

import keras
import keras_tuner
import numpy as np

_AHEAD = 2  # batches prepared ahead of training

# fit arguments that mean "leave this search's data alone" when set
_UNSUPPORTED = ("sample_weight", "class_weight", "validation_split", "steps_per_epoch")


def global_seed() -> int | None:
    """TensorFlow's global seed (``tf.random.set_seed``, ``keras.utils.set_random_seed``),
    read without drawing an operation seed (``tf.compat.v1.get_seed`` would draw one)."""
    from tensorflow.python.eager import context
    return context.global_seed()


class ArrayPipeline:
    """The training (and validation) ``tf.data.Dataset`` of one search; see the module."""

    def __init__(self, x: np.ndarray, y: np.ndarray, *, batch_size: int | None = None,
                 shuffle: bool = True,
                 validation: tuple[np.ndarray, np.ndarray] | None = None,
                 validation_batch_size: int | None = None) -> None:
        import tensorflow as tf

        self.batch_size = int(batch_size or 32)
        self.shuffle = bool(shuffle)
        # the permutation's seed: [base, epoch]; `_advance` is [0, 1] when every epoch
        # draws a new order, [0, 0] when the order stays (a global seed is set)
        self._seed = tf.Variable([0, 0], dtype=tf.int64, trainable=False)
        self._advance = tf.Variable([0, 0], dtype=tf.int64, trainable=False)
        self.train = _batches(_tensors(x, y), self.batch_size,
                              self._permutation if self.shuffle else None)
        self.validation = None
        if validation is not None:
            self.validation = _batches(_tensors(*validation),
                                       int(validation_batch_size or self.batch_size), None)
        self.reseed()

    def _permutation(self, n: Any) -> Any:
        import tensorflow as tf
        seed = self._seed.assign_add(self._advance)
        return tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=seed)

    def reseed(self) -> None:
        """Before every ``fit``: the training order follows the global seed set now."""
        seed = global_seed()
        if seed is None:
            self._seed.assign([secrets.randbits(62), 0])
            self._advance.assign([0, 1])
        else:
            self._seed.assign([int(seed), 0])
            self._advance.assign([0, 0])


def _tensors(x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
    """As Keras converts arrays for its pipeline: other floats become ``floatx``."""
    import tensorflow as tf

    def convert(a: np.ndarray) -> Any:
        if np.issubdtype(a.dtype, np.floating) and a.dtype != np.dtype(keras.config.floatx()):
            a = a.astype(keras.config.floatx())
        return tf.convert_to_tensor(a)

    return convert(x), convert(y)


def _batches(data: tuple[Any, Any], batch_size: int, permutation: Any) -> Any:
    """Batches of ``data`` gathered by index; one order (``permutation``, or in order) per
    pass over the dataset, i.e. per epoch."""
    import tensorflow as tf

    n = int(data[1].shape[0])
    order = tf.data.Dataset.from_tensors(tf.constant(n, dtype=tf.int64))
    order = order.map(permutation if permutation is not None
                      else (lambda m: tf.range(m, dtype=tf.int64)))
    indices = order.flat_map(lambda p: tf.data.Dataset.from_tensor_slices(p).batch(batch_size))
    ds = indices.map(lambda i: (tf.gather(data[0], i), tf.gather(data[1], i)),
                     num_parallel_calls=_AHEAD)
    ds = ds.apply(tf.data.experimental.assert_cardinality(math.ceil(n / batch_size)))
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False  # as Keras
    options.experimental_external_state_policy = tf.data.experimental.ExternalStatePolicy.IGNORE
    # No autotuning: its background thread made the end of a fit wait for it, about half
    # a second in every other fit here (Keras's own pipeline pays that). Two batches are
    # gathered ahead of training, in the background.
    options.autotune.enabled = False
    return ds.with_options(options).prefetch(_AHEAD)


def _is_zero(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


def _is_array(a: Any) -> TypeGuard[np.ndarray]:
    return isinstance(a, np.ndarray) and a.ndim >= 1 and a.dtype != object


def once_per_search(hypermodel: Any, fit_args: tuple[Any, ...], fit_kwargs: dict[str, Any]
                    ) -> tuple[tuple[Any, ...], dict[str, Any], ArrayPipeline | None]:
    """``search()``'s fit arguments with the arrays replaced by one :class:`ArrayPipeline`'s
    datasets, and that pipeline; or the arguments unchanged and ``None`` (see the module)."""
    unchanged = fit_args, fit_kwargs, None
    if keras.backend.backend() != "tensorflow":
        return unchanged
    if (not isinstance(hypermodel, keras_tuner.HyperModel)
            or type(hypermodel).fit is not keras_tuner.HyperModel.fit):
        return unchanged  # the user's fit may set batch_size, shuffle, ... per trial
    try:
        bound = inspect.signature(keras.Model.fit).bind(None, *fit_args, **fit_kwargs)
    except TypeError:
        return unchanged  # model.fit will say what is wrong
    args = dict(bound.arguments)
    args.pop("self")
    if "kwargs" in args:
        return unchanged
    x, y = args.get("x"), args.get("y")
    if not (_is_array(x) and _is_array(y)) or len(x) != len(y) or len(y) == 0:
        return unchanged
    if any(args.get(k) is not None and not _is_zero(args.get(k))
           for k in _UNSUPPORTED):
        return unchanged
    shuffle = args.get("shuffle", True)
    batch_size = args.get("batch_size")
    if not isinstance(shuffle, bool) or not (batch_size is None or (
            isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size > 0)):
        return unchanged  # shuffle="batch", a bad batch_size: Keras's own path (and errors)
    val = args.get("validation_data")
    validation = None
    if (isinstance(val, (tuple, list)) and len(val) == 2 and all(_is_array(v) for v in val)
            and len(val[0]) == len(val[1]) and args.get("validation_steps") is None):
        validation = (val[0], val[1])
    pipeline = ArrayPipeline(x, y, batch_size=batch_size, shuffle=shuffle,
                             validation=validation,
                             validation_batch_size=args.get("validation_batch_size"))
    for name in ("y", "batch_size"):
        args.pop(name, None)
    # the dataset shuffles itself; fit's default shuffle=True would only warn about it
    args["x"], args["shuffle"] = pipeline.train, False
    if validation is not None:
        args["validation_data"] = pipeline.validation
        args.pop("validation_batch_size", None)
    return (), args, pipeline
