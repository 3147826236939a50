"""What every public function shares: argument checks, seeds, devices, threads, progress bars.

The checking policy of the package, in one place:

- a bad argument raises `ValueError` naming the argument and what is allowed, before any work;
- integers may be Python or NumPy integers (never bools); reals must be finite unless a
  function says otherwise; tensors must be non-empty, finite and of the documented shape;
- a figure's own arguments (axes, figures, colours, titles) are checked like the rest, before
  anything is drawn;
- the device is the CPU unless the caller asks for another one (`device="cuda"`): these models
  are faster on a CPU, and the book's numbers are written against the CPU's random streams;
- a function that changes torch's (process-wide) thread count holds `_THREADS` while it
  runs, so two trainings in two Python threads never change each other's numbers, and the
  count is always put back.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import threading

import numpy as np
import torch

Array = torch.Tensor | np.ndarray  # what public functions accept where they take numbers
# Seeds go to torch.Generator.manual_seed, which takes 64-bit unsigned values.
_SEED_MAX = 2**63 - 1


def _unwrap(value):
    """A 0-d integer tensor as its Python number; anything else unchanged."""
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.is_floating_point():
        return value.item()
    return value


def integer(value, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """`value` as an int in [low, high]; NumPy integers and 0-d integer tensors count."""
    value = _unwrap(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer{_range(low, high)}, got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer{_range(low, high)}, got {value!r}")
    return value


def _range(low, high) -> str:
    if low is not None and high is not None:
        return f" in [{low}, {high}]"
    if low is not None:
        return f" >= {low}"
    return f" <= {high}" if high is not None else ""


def flag(value, name: str) -> bool:
    """True or False (NumPy bools count); anything else is a mistake worth naming."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def size(value, name: str) -> int:
    """A positive integer (a count or a length); NumPy integers and 0-d integer tensors count."""
    value = _unwrap(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def number(
    value,
    name: str,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """`value` as a finite float in the interval from low to high (ends open or closed)."""
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        value = value.item()
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if ok:
        v = float(value)
        ok = math.isfinite(v) and (v > low if low_open else v >= low)
        ok = ok and (v < high if high_open else v <= high)
    if not ok:
        allowed = _interval(low, high, low_open, high_open)
        raise ValueError(f"{name} must be a finite number{allowed}, got {value!r}")
    return v


def bound(value, name: str) -> float:
    """An end of an interval: a real number, or -inf or inf (never NaN)."""
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise ValueError(f"{name} must be a number (or -inf, inf), got {value!r}")
    return float(value)


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    """The allowed interval for an error message: "", " > 0", " <= 1" or " in (0, 1]"."""
    if math.isinf(low) and math.isinf(high):
        return ""
    if math.isinf(high):
        return f" {'>' if low_open else '>='} {low:g}"
    if math.isinf(low):
        return f" {'<' if high_open else '<='} {high:g}"
    return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def text(value, name: str, *, empty: bool = True) -> str:
    """A string (a title, a label, a name); with `empty=False`, a non-empty one."""
    if not isinstance(value, str) or (not empty and not value):
        raise ValueError(f"{name} must be a{'' if empty else ' non-empty'} string, got {value!r}")
    return value


def texts(value, name: str, count: int | None = None) -> list[str]:
    """A list or tuple of strings (one per panel, per model, ...), `count` of them if given."""
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a list of strings, got {value!r}")
    if count is not None and len(value) != count:
        raise ValueError(f"{name} must hold {count} strings, one per item, got {len(value)}")
    if not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name} must hold strings only, got {list(value)!r}")
    return list(value)


def optional(check, value, name: str, **kwargs):
    """None, or `value` passed through `check(value, name, **kwargs)` (e.g. `number`)."""
    return None if value is None else check(value, name, **kwargs)


def function(value, name: str):
    """A callable (a sampler, a drawing function, an edit of activations)."""
    if not callable(value):
        raise ValueError(f"{name} must be a function, got {value!r}")
    return value


def seed(value, name: str = "seed") -> int:
    """A seed: an integer in [0, 2^63 - 1]."""
    return integer(value, name, low=0, high=_SEED_MAX)


def generator(value, name: str = "seed") -> torch.Generator:
    """A CPU generator seeded with the checked `value` (CPU draws: same numbers on any device)."""
    return torch.Generator().manual_seed(seed(value, name))


def device(value=None) -> torch.device:
    """The device to use: the CPU when `value` is None; CUDA only when asked for by name."""
    if value is None:
        return torch.device("cpu")
    try:
        dev = torch.device(value)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device must be None (the CPU), a torch.device or a name such as 'cpu' or 'cuda',"
            f" got {value!r}"
        ) from None
    # say so here, before any work, rather than deep inside torch at the first tensor
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device is {value!r}, but torch finds no CUDA device here; use None (the CPU)")
    return dev


def model_of(value, name: str = "model", cls: type | None = None):
    """A supersim model: an nn.Module with `n_instances`, `n_features`, `signed_inputs`,
    `encode`, `decode` and `target` (see `supersim.models`); an instance of `cls` when given."""
    if cls is not None and not isinstance(value, cls):
        raise ValueError(f"{name} must be a supersim.{cls.__name__}, got {type(value).__name__}")
    need = ("n_instances", "n_features", "signed_inputs", "encode", "decode", "target")
    if not isinstance(value, torch.nn.Module) or not all(hasattr(value, a) for a in need):
        raise ValueError(
            f"{name} must be a supersim model (ToyModel, AbsModel or a subclass),"
            f" got {type(value).__name__}"
        )
    return value


def batch(
    value, name: str, n_instances: int | None = None, width: int | None = None, *,
    axis: str = "features", like: torch.Tensor | None = None,
) -> torch.Tensor:
    """A batch in the public layout (batch, instances, `axis`) = (B, I, W), checked.

    Raises ValueError naming `name` and the layout unless `value` is a non-empty, finite,
    real 3-D tensor or array whose instances and last axis are `n_instances` and `width`
    (None: any). Returned as a float tensor on `like`'s device and dtype when `like` is given
    (inputs follow the model), else as it came (integers as float32).
    """
    t = as_tensor(value, name)
    want = (n_instances, width)
    if t.dim() != 3 or any(w is not None and s != w for s, w in zip(t.shape[1:], want, strict=True)):
        sizes = ", ".join("any" if w is None else str(w) for w in want)
        raise ValueError(
            f"{name} must be a batch laid out (batch, instances, {axis}) = (B, {sizes}),"
            f" got shape {tuple(t.shape)}"
        )
    t = _real(t, name)
    if t.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one example, got shape {tuple(t.shape)}")
    _finite(t, name)
    return t if like is None else t.to(device=like.device, dtype=like.dtype)


def check_batch(
    model, x, importance, target=None, *, broadcast: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """A batch x (B, I, F), an importance (I, F) and an optional target (B, I, F) checked
    against `model` (checked first) and moved to its device and dtype.

    Importance must be finite and >= 0, and exactly (I, F) unless `broadcast` lets a scalar,
    (F,) or (I, 1) stand for it; the target, when given, has x's shape.
    """
    model_of(model)
    like = next(model.parameters(), None)
    shape = (model.n_instances, model.n_features)
    x = batch(x, "x", *shape, like=like)
    importance = instance_table(importance, "importance", *shape, broadcast=broadcast, like=like)
    if target is not None:
        target = batch(target, "target", *shape, like=like)
        if target.shape != x.shape:
            raise ValueError(f"target must have x's shape {tuple(x.shape)}, got {tuple(target.shape)}")
    return x, importance, target


def instance_table(
    value, name: str, n_instances: int, n_features: int, *, broadcast: bool = False,
    like: torch.Tensor | None = None,
) -> torch.Tensor:
    """An (instances, features) tensor of finite numbers >= 0 (an importance), on `like`'s
    device and dtype when given. Exactly that shape, unless `broadcast` lets a scalar, (F,),
    (I, 1) or (1, F) stand for it."""
    want = (n_instances, n_features)
    t = as_tensor(value, name)
    if broadcast and t.dim() <= 2:
        with contextlib.suppress(RuntimeError):
            t = torch.broadcast_to(t, want)
    if tuple(t.shape) != want:
        allowed = " (or a scalar, (F,) or (I, 1) that broadcasts to it)" if broadcast else ""
        raise ValueError(f"{name} must be a tensor of shape (instances, features) = {want}{allowed},"
                         f" got shape {tuple(t.shape)}")
    t = _real(t, name)
    _finite(t, name)
    if t.device.type != "meta" and bool((t < 0).any()):
        raise ValueError(f"{name} must be >= 0")
    return t if like is None else t.to(device=like.device, dtype=like.dtype)


def instance_values(value, name: str, n_instances: int, *, like: torch.Tensor | None = None) -> torch.Tensor:
    """A finite number >= 0 or one per instance, as an (instances,) tensor (like `like`)."""
    t = _real(as_tensor(value, name), name).reshape(-1)
    if t.numel() not in (1, n_instances):
        raise ValueError(f"{name} must be one number or one per instance ({n_instances}), got {t.numel()}")
    _finite(t, name)
    if bool((t < 0).any()):
        raise ValueError(f"{name} must be >= 0")
    t = t.expand(n_instances)
    return t if like is None else t.to(device=like.device, dtype=like.dtype)


def snapshot_list(value, name: str = "snapshots", params: dict | None = None) -> list:
    """`train`'s snapshots: a non-empty list of (step, {parameter name: tensor}) pairs.

    With `params` (a model's named parameters), every snapshot must hold each of them, in
    its shape, with finite values (the snapshot is about to be run through the model).
    """
    if not isinstance(value, list) or not value:
        raise ValueError(
            f"{name} must be a non-empty list of (step, params) pairs from train, got {value!r:.60}"
        )
    for item in value:
        ok = isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], dict)
        if not ok or isinstance(item[0], bool) or not isinstance(item[0], numbers.Integral):
            raise ValueError(f"{name} must hold (step, params) pairs from train, got {item!r:.60}")
        for key, want in (params or {}).items():
            got = item[1].get(key)
            if not isinstance(got, torch.Tensor) or got.shape != want.shape:
                shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
                raise ValueError(f"{name} must hold the model's parameter {key!r} with shape "
                                 f"{tuple(want.shape)} at step {item[0]}, got {shape}")
            _finite(_real(got, name), f"{name}' {key!r} at step {item[0]}")
    return value


def generator_on(value, device: torch.device, name: str = "generator") -> torch.Generator:
    """A torch.Generator that draws on `device` (a CPU generator for CPU tensors)."""
    if not isinstance(value, torch.Generator):
        raise ValueError(f"{name} must be None or a torch.Generator, got {value!r}")
    if value.device.type != device.type:
        raise ValueError(f"{name} must draw on the data's device {device}, got a generator on {value.device}")
    return value


def _real(t: torch.Tensor, name: str) -> torch.Tensor:
    """t as a floating-point tensor; bools and complex numbers are mistakes worth naming."""
    if t.dtype == torch.bool or t.is_complex():
        raise ValueError(f"{name} must hold real numbers, got dtype {t.dtype}")
    return t if t.is_floating_point() else t.float()


def _finite(t: torch.Tensor, name: str) -> None:
    """Raise unless every entry of the floating-point tensor t is finite.

    A NaN or an infinite entry makes the sum NaN or infinite, so one sum (fast in any memory
    layout) clears almost every tensor; only when it overflows, or there is something to
    report, does the entrywise check run.
    """
    if t.device.type == "meta" or t.numel() == 0:  # nothing to look at
        return
    t = t.detach()
    if not math.isfinite(t.sum().item()) and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite (no NaN or inf)")


def as_tensor(value, name: str) -> torch.Tensor:
    """torch.as_tensor, with an error that names the argument when `value` holds no numbers."""
    if isinstance(value, (str, bytes)) or value is None:
        raise ValueError(f"{name} must be a tensor or an array of numbers, got {value!r}")
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        kind = type(value).__name__
        raise ValueError(f"{name} must be a tensor or an array of numbers, got {kind}") from None


def float_tensor(
    value,
    name: str,
    *,
    min_dim: int = 1,
    max_dim: int | None = None,
    shape: str = "",
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """A non-empty, finite floating-point tensor with a number of axes in [min_dim, max_dim].

    `shape` describes the allowed shapes in the error message, e.g. "(instances, features)";
    every value must lie in the interval from low to high (ends open or closed). The result
    has `dtype` when one is given (detached, on the CPU), else the input's floating dtype
    (integers become float32).
    """
    t = as_tensor(value, name)
    if dtype is not None and t.is_floating_point() and not isinstance(value, (torch.Tensor, np.ndarray)):
        t = torch.as_tensor(value, dtype=dtype)  # Python floats at full precision, not via float32
    if not t.is_floating_point():
        if t.dtype == torch.bool or t.is_complex():
            raise ValueError(f"{name} must hold real numbers, got dtype {t.dtype}")
        t = t.to(dtype or torch.float32)
    dims = f"{min_dim}" if max_dim == min_dim else f"{min_dim} to {max_dim or 'any number of'}"
    want = shape or f"{dims} axes"
    if t.dim() < min_dim or (max_dim is not None and t.dim() > max_dim):
        raise ValueError(f"{name} must be {want}, got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    below = (t <= low) if low_open else (t < low)
    above = (t >= high) if high_open else (t > high)
    if bool((below | above).any()):
        bad = t[below | above].flatten()[:3].tolist()
        raise ValueError(f"{name} must hold values{_interval(low, high, low_open, high_open)}, got {bad}")
    return t if dtype is None else t.detach().to(device="cpu", dtype=dtype)


def index_tensor(
    value, name: str, *, low: int = 0, high: int | None = None, min_dim: int = 1,
    max_dim: int | None = None, shape: str = "",
) -> torch.Tensor:
    """A non-empty int64 tensor of whole numbers in [low, high] (indices, classes, offsets).

    Integer dtypes, and floats that hold whole numbers, count; bools do not.
    """
    t = as_tensor(value, name)
    if t.dtype == torch.bool or t.is_complex():
        raise ValueError(f"{name} must hold integers, got dtype {t.dtype}")
    dims = f"{min_dim}" if max_dim == min_dim else f"{min_dim} to {max_dim or 'any number of'}"
    if t.dim() < min_dim or (max_dim is not None and t.dim() > max_dim):
        raise ValueError(f"{name} must be {shape or f'{dims} axes'}, got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(t.shape)}")
    if t.is_floating_point() and not bool((torch.isfinite(t) & (t == t.round())).all()):
        raise ValueError(f"{name} must hold integers, got {t.flatten()[:3].tolist()}")
    t = t.detach().cpu().long()
    if bool((t < low).any()) or (high is not None and bool((t > high).any())):
        raise ValueError(f"{name} must hold integers{_range(low, high)}, got {t.flatten()[:5].tolist()}")
    return t


def mask(value, name: str, *, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """A bool tensor (or one of 0s and 1s) of `shape` if given, as torch.bool on the CPU."""
    t = as_tensor(value, name)
    if t.dtype != torch.bool and (t.is_complex() or not bool(((t == 0) | (t == 1)).all())):
        raise ValueError(f"{name} must hold True/False (or 0/1) values, got {t.flatten()[:5].tolist()}")
    if shape is not None and tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(t.shape)}")
    return t.detach().cpu().bool()


def batched(value, name: str, shape: str) -> tuple[torch.Tensor, bool]:
    """A weight matrix (rows, columns), or a stack of them (instances, rows, columns).

    Checked as `float_tensor` and returned as float64 on the CPU with the instances axis,
    together with whether that axis was added (so that results can drop it again). `shape`
    names the two axes, e.g. "(hidden, features)".
    """
    inner = shape.strip("()")
    allowed = f"(instances, {inner}) or {shape}"
    t = float_tensor(value, name, min_dim=2, max_dim=3, shape=allowed, dtype=torch.float64)
    return (t.unsqueeze(0), True) if t.dim() == 2 else (t, False)


# ----------------------------------------------------------------------------------------------
# Figures (matplotlib is imported only when a figure argument is checked)


def axes(value, name: str = "ax"):
    """None (draw into a new figure) or a matplotlib Axes to draw into."""
    from matplotlib.axes import Axes

    if value is not None and not isinstance(value, Axes):
        raise ValueError(f"{name} must be None or a matplotlib Axes, got {value!r}")
    return value


def figure(value, name: str = "fig", *, optional: bool = True):
    """A matplotlib Figure or SubFigure to draw into (or None, when `optional`)."""
    from matplotlib.figure import FigureBase

    if not isinstance(value, FigureBase) and not (optional and value is None):
        allowed = "None or a matplotlib Figure" if optional else "a matplotlib Figure"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value


def color(value, name: str = "color"):
    """A colour matplotlib understands: a name, a hex string, an RGB(A) tuple."""
    from matplotlib.colors import is_color_like

    if isinstance(value, (bool, np.bool_)) or not is_color_like(value):
        raise ValueError(f"{name} must be a matplotlib colour (e.g. 'C0', 'k', '#1f77b4'), got {value!r}")
    return value


# ----------------------------------------------------------------------------------------------
# Threads and progress bars

_THREADS = threading.RLock()

# The one rule for threads: a step (or iteration) of fewer multiply-adds than this runs on one
# thread. Such tiny steps are bound by per-op overhead, where a second thread only adds
# synchronisation, and on a shared machine its OpenMP barriers can wait for a core another
# program holds (measured in benchmarks/README.md: 2 threads ran 50x slower than one at load 8).
THREAD_WORK = 4_000_000


def threads_for(work: float, most: int | None = None) -> int:
    """How many threads a computation of `work` multiply-adds per step should use.

    1 below `THREAD_WORK`, else `most` (a checked positive int; None: torch's setting, usually
    the number of cores). Callers estimate `work` roughly; the threshold is an order of magnitude.
    """
    return 1 if work < THREAD_WORK else (most or torch.get_num_threads())


@contextlib.contextmanager
def num_threads(n: int | None):
    """Run the block with torch using `n` threads (None: as set), and nobody else changing it.

    torch's thread count is process-wide: the lock keeps a second training (a widget callback,
    say) from changing it under this one, and the count is restored on the way out.
    """
    with _THREADS:
        old = torch.get_num_threads()
        if n is not None and n != old:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            if torch.get_num_threads() != old:
                torch.set_num_threads(old)


def progress_bar(progress: bool | None, total: int, desc: str):
    """A tqdm bar over `total` steps when `want_progress(progress)`, else None."""
    if not want_progress(progress):
        return None
    from tqdm.auto import tqdm  # imported here: tqdm.auto is slow to import

    return tqdm(total=total, desc=desc, mininterval=0.5, leave=False)


def show_loss(bar, step: int, loss) -> None:
    """Advance a `progress_bar` (or None) every 100 steps, showing `loss()`, the loss after `step`.

    `loss` is a function, so the number is only computed (and synced from a device) when shown.
    """
    if bar is not None and step % 100 == 99:
        bar.update(100)
        bar.set_postfix(loss=f"{loss():.4g}", refresh=False)


def want_progress(progress) -> bool:
    """Whether to show a progress bar: as asked, else unless SUPERSIM_PROGRESS=0."""
    if progress is not None:
        return bool(progress)
    # The book's build and test commands set SUPERSIM_PROGRESS=0 to keep bars out of pages.
    return os.environ.get("SUPERSIM_PROGRESS", "1").lower() not in ("0", "false", "no")
