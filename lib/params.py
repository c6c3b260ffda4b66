"""Declared chapter parameters: names, defaults, allowed ranges, help.

A chapter's :class:`Specification` is the single source of truth for what
its notebook's ``parameters`` cell may hold. The command line, the study's
``Config`` and the tests all validate against it, so a bad value fails before
any notebook runs, with a message that names the parameter and the range.

A study declares each parameter once, in its ``PARAMETERS``; its ``Config``
is generated from that declaration by subclassing :class:`ChapterConfig`::

    PARAMETERS = Specification("toy-manifolds", (Choice("preset", "default", PRESETS),
                                                 Integer("seed", 0, 0, 2**32 - 1)))
    SIZES = {"ci": dict(resolution=32), "default": dict(resolution=96), ...}

    class Config(ChapterConfig, parameters=PARAMETERS, sizes=SIZES):
        pass    # (a docstring; methods and properties of the chapter's own)

and a notebook builds it from its ``parameters`` cell with
``study.Config(**study.PARAMETERS.values_in(globals()))``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from lib._checks import check_in, check_int, check_real

__all__ = ["Address", "ChapterConfig", "Choice", "Device", "Folder", "FrozenDict", "Integer",
           "Real", "Specification", "Text", "frozen", "shown"]


def shown(value, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters (a 5,000-character path stays readable)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit - 3]}... ({len(str(value))} characters)"


@dataclass(frozen=True)
class Choice:
    name: str
    default: str
    choices: tuple[str, ...]
    help: str = ""

    python_type: ClassVar[type] = str

    def validate(self, value, caller):
        return check_in(value, self.choices, name=self.name, caller=caller)

    def parse(self, text: str):
        return text

    @property
    def allowed(self) -> str:
        return "one of " + ", ".join(self.choices)


@dataclass(frozen=True)
class Integer:
    name: str
    default: int
    low: int
    high: int
    help: str = ""

    python_type: ClassVar[type] = int

    def validate(self, value, caller):
        return check_int(value, name=self.name, caller=caller, low=self.low, high=self.high)

    def parse(self, text: str):
        try:
            return int(text)
        except ValueError:
            return text  # validate() then reports the type with the allowed range

    @property
    def allowed(self) -> str:
        return f"an int in [{self.low}, {self.high}]"


@dataclass(frozen=True)
class Real:
    name: str
    default: float
    low: float
    high: float
    help: str = ""

    python_type: ClassVar[type] = float

    def validate(self, value, caller):
        value = check_real(value, name=self.name, caller=caller, low=self.low, high=self.high)
        if not math.isfinite(value):   # also when a bound is infinite
            raise ValueError(f"The {self.name!r} parameter of {caller} must be a finite float "
                             f"in [{self.low}, {self.high}]. Got {value!r} instead.")
        return value

    def parse(self, text: str):
        try:
            return float(text)
        except ValueError:
            return text

    @property
    def allowed(self) -> str:
        return f"a float in [{self.low}, {self.high}]"


@dataclass(frozen=True)
class Text:
    """A free string such as a path or an address; ``""`` means "not given"."""

    name: str
    default: str
    help: str = ""

    python_type: ClassVar[type] = str

    def validate(self, value, caller):
        if not isinstance(value, str):
            raise TypeError(f"The {self.name!r} parameter of {caller} must be {self.allowed}. "
                            f"Got {shown(value)} instead.")
        return value

    def parse(self, text: str):
        return text

    @property
    def allowed(self) -> str:
        return "a str (empty for none)"


@dataclass(frozen=True)
class Device(Choice):
    """A torch device name among ``choices``; any but ``"cpu"`` must be one torch sees.

    torch is imported only to check a device other than the CPU, so that
    validating the default costs nothing. Where the chapter runs its units on
    a Dask cluster at a scheduler address (parameters ``backend`` and
    ``scheduler``), the GPU is the workers', checked on each of them
    (:func:`lib.sweeps.run_cells`), not on this machine.
    """

    def check_together(self, values: dict, caller: str) -> None:
        value = values[self.name]
        if not value.startswith("cuda"):
            return
        if values.get("backend") == "dask" and values.get("scheduler"):
            return       # the cluster's workers check CUDA where each unit runs
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"The {self.name!r} parameter of {caller} must be 'cpu' on a "
                             f"machine where torch sees no CUDA GPU (or name a Dask scheduler "
                             f"whose workers have one, with backend 'dask'). Got {value!r} "
                             f"instead.")


@dataclass(frozen=True)
class Folder(Text):
    """A folder the chapter reads, or ``""`` for none; validated to exist and hold ``files``.

    ``files`` maps the chapter's values (all of them, already checked one by
    one) to the names the chapter will read from the folder; the first one
    missing is named in the error. The value comes back as an absolute path
    (``~`` expanded, a relative path taken from the current directory), so
    that a kernel started in another folder reads the folder the caller meant.
    """

    files: Callable[[dict], Iterable[str]] | None = None
    holds: str = "the files the chapter reads"

    def validate(self, value, caller):
        value = super().validate(value, caller)
        if not value:
            return value
        got = f"Got {shown(value)}"
        try:
            folder = Path(value).expanduser().absolute()
            is_dir, exists = folder.is_dir(), folder.exists()
        except (OSError, ValueError) as error:   # a name too long, a NUL byte
            raise ValueError(f"The {self.name!r} parameter of {caller} must be {self.allowed}. "
                             f"{got}, which is not a usable path "
                             f"({getattr(error, 'strerror', None) or error}), instead.") from None
        if not is_dir:
            what = "which is a file" if exists else "which does not exist"
            raise ValueError(f"The {self.name!r} parameter of {caller} must be {self.allowed}. "
                             f"{got}, {what}, instead.")
        return str(folder)

    def check_together(self, values: dict, caller: str) -> None:
        """Raise unless the folder holds every file ``files(values)`` names (first missing named)."""
        folder = values.get(self.name)
        if not folder or self.files is None:
            return
        for name in self.files(values):
            if not (Path(folder) / name).is_file():
                raise ValueError(f"The {self.name!r} parameter of {caller} must be a folder "
                                 f"holding {self.holds}. Got {shown(folder)}, which lacks "
                                 f"{name!r}, instead.")

    @property
    def allowed(self) -> str:
        return f"an existing folder holding {self.holds} (empty for none)"


# Schemes of the Dask communication layers a client can reach a scheduler through.
DASK_SCHEMES = ("tcp", "tls", "ucx", "ws", "wss")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)$")


@dataclass(frozen=True)
class Address(Text):
    """A network address ``host:port`` or ``scheme://host:port`` (a Dask scheduler), ``""`` for none."""

    def validate(self, value, caller):
        value = super().validate(value, caller)
        if not value:
            return value
        bad = ValueError(f"The {self.name!r} parameter of {caller} must be {self.allowed}. "
                         f"Got {shown(value)} instead.")
        scheme, sep, rest = value.partition("://")
        if not sep:
            scheme, rest = "tcp", value
        if scheme not in DASK_SCHEMES or not rest or any(c in rest for c in "/?#@ "):
            raise bad
        try:
            parts = urlsplit(f"{scheme}://{rest}")
            port = parts.port
        except ValueError:
            raise bad from None
        host = parts.netloc.rpartition(":")[0]
        if port is None or port == 0 or not _HOST.match(host):
            raise bad
        return value

    @property
    def allowed(self) -> str:
        return (f"a scheduler address host:port or scheme://host:port with scheme in "
                f"{{{', '.join(DASK_SCHEMES)}}} and port in [1, 65535] (empty for none)")


@dataclass(frozen=True)
class Specification:
    """The parameters of one chapter, and the checks that read several of them.

    ``checks`` are functions ``check(values, caller)`` called after every
    parameter passed its own check, with all the values (the defaults filled
    in for those not given); each raises ``ValueError`` naming the parameter
    whose value contradicts another, or needs something the machine lacks
    (an environment variable, a file).
    """

    chapter: str
    parameters: tuple
    checks: tuple = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    @property
    def defaults(self) -> dict:
        return {p.name: p.default for p in self.parameters}

    def __getitem__(self, name):
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise KeyError(name)

    def validate(self, values: dict) -> dict:
        """Check names and ranges of ``values``; return them coerced.

        Raises
        ------
        ValueError
            On an unknown name (listing the known ones) or a value out of range.
        TypeError
            On a value of the wrong type.
        """
        caller = f"chapter {self.chapter!r}"
        unknown = sorted(set(values) - set(self.names))
        if unknown:
            known = "; ".join(f"{p.name} ({p.allowed})" for p in self.parameters)
            raise ValueError(f"Unknown parameter {unknown[0]!r} for {caller}. "
                             f"Its parameters are: {known}.")
        checked = {name: self[name].validate(value, caller) for name, value in values.items()}
        everything = {**self.defaults, **checked}
        for parameter in self.parameters:
            if hasattr(parameter, "check_together"):
                parameter.check_together(everything, caller)
        for check in self.checks:
            check(everything, caller)
        return checked

    def finish_config(self, config, sizes: dict) -> None:
        """Validate a frozen chapter ``Config`` in place and attach its preset's ``sizes``.

        Called from :meth:`ChapterConfig.__post_init__`: every declared
        parameter is read from the dataclass, checked and coerced, and
        ``config.sizes`` becomes a :func:`frozen` copy of ``sizes[config.preset]``.
        """
        values = self.validate({name: getattr(config, name) for name in self.names})
        for name, value in values.items():
            object.__setattr__(config, name, value)
        object.__setattr__(config, "sizes", frozen(sizes[config.preset]))

    def values_in(self, namespace) -> dict:
        """The declared parameters' values, read by name from ``namespace``.

        A notebook passes its ``globals()``, where its ``parameters`` cell (and
        the cell papermill injects after it) assigned them::

            config = study.Config(**study.PARAMETERS.values_in(globals()))

        Raises
        ------
        ValueError
            When ``namespace`` lacks a declared parameter.
        """
        missing = [name for name in self.names if name not in namespace]
        if missing:
            raise ValueError(f"The 'namespace' parameter of values_in must define every "
                             f"parameter of chapter {self.chapter!r} ({', '.join(self.names)}). "
                             f"Got no {', '.join(map(repr, missing))} instead.")
        return {name: namespace[name] for name in self.names}

    def parse(self, pairs: list[tuple[str, str]]) -> dict:
        """Turn command-line ``(name, text)`` pairs into validated values.

        Raises
        ------
        ValueError
            Also when a name is given twice (the last one would silently win).
        """
        raw, texts = {}, {}
        for name, text in pairs:
            if name in texts:
                raise ValueError(f"The {name!r} parameter of chapter {self.chapter!r} must be "
                                 f"given once. Got {shown(texts[name])} and then {shown(text)} "
                                 f"instead.")
            texts[name] = text
            raw[name] = self[name].parse(text) if name in self.names else text
        return self.validate(raw)


class FrozenDict(dict):
    """A dict that cannot be changed, so that it hashes; it pickles and prints as a dict.

    A chapter ``Config`` holds its preset's sizes in one: a frozen dataclass
    hashes its fields (``functools.lru_cache`` keys on Configs) and joblib
    hashes it by pickling. A changed copy is a new dict: ``dict(sizes, seeds=1)``.

    Examples
    --------
    >>> sizes = frozen({"fractions": (0.1, 1.0), "grids": {1: {"views": 96}}})
    >>> sizes["grids"][1]["views"], hash(sizes) == hash(frozen(dict(sizes)))
    (96, True)
    >>> sizes
    {'fractions': (0.1, 1.0), 'grids': {1: {'views': 96}}}
    """

    __slots__ = ()

    def _refuse(self, *args, **kwargs):
        raise TypeError("A FrozenDict cannot be changed; build a changed copy instead, "
                        "e.g. dict(sizes, name=value).")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __hash__(self):
        return hash(frozenset(self.items()))

    def __reduce__(self):
        # dict's own pickling refills the object item by item, which __setitem__ refuses.
        return FrozenDict, (dict(self),)


def frozen(value):
    """``value`` with each dict in it (also within dicts and tuples) made a :class:`FrozenDict`."""
    if isinstance(value, dict):
        return FrozenDict({key: frozen(item) for key, item in value.items()})
    if isinstance(value, tuple):
        return tuple(frozen(item) for item in value)
    return value


class ChapterConfig:
    """Base of every study's ``Config``: a frozen dataclass generated from the study's parameters.

    ``class Config(ChapterConfig, parameters=PARAMETERS, sizes=SIZES)`` makes
    ``Config`` a frozen dataclass with one field per declared parameter, in
    declaration order, defaulting to the declared default, plus ``sizes``:
    the :func:`frozen` sizes of the chosen preset, ``SIZES[preset]`` at
    construction time. Construction validates and coerces every parameter
    (:meth:`Specification.finish_config`) and raises the error that names
    it. ``sizes`` is not an argument, but it takes part in equality and
    hashing: two Configs of the same parameters built under different
    ``SIZES`` (tests shrink a preset) differ. Configs pickle (joblib hashes
    them that way), and keep their sizes through pickling.

    The class body adds methods and properties; a ``__post_init__`` of its
    own must call ``super().__post_init__()`` first.
    """

    parameters: ClassVar[Specification]
    preset_sizes: ClassVar[dict]

    def __init_subclass__(cls, *, parameters: Specification | None = None,
                          sizes: dict | None = None, **kwargs):
        super().__init_subclass__(**kwargs)
        if parameters is None and sizes is None:
            return   # a subclass of a generated Config: already a dataclass
        if not isinstance(parameters, Specification) or not isinstance(sizes, dict):
            raise TypeError(f"{cls.__qualname__} must be declared as class "
                            f"{cls.__qualname__}(ChapterConfig, parameters=<Specification>, "
                            f"sizes=<dict of presets>).")
        clashes = [name for name in (*parameters.names, "sizes") if name in cls.__dict__]
        clashes += list(cls.__dict__.get("__annotations__", {}))
        if clashes:
            raise TypeError(f"{cls.__qualname__} must not define {clashes[0]!r}: its fields "
                            f"are the parameters of chapter {parameters.chapter!r}, declared "
                            f"in its Specification, and sizes.")
        cls.parameters = parameters
        cls.preset_sizes = sizes
        annotations = {}
        for parameter in parameters.parameters:
            annotations[parameter.name] = parameter.python_type.__name__
            setattr(cls, parameter.name, parameter.default)
        annotations["sizes"] = "FrozenDict"
        cls.sizes = field(default=None, init=False, repr=False)
        cls.__annotations__ = annotations
        dataclass(frozen=True)(cls)

    def __post_init__(self):
        self.parameters.finish_config(self, self.preset_sizes)
