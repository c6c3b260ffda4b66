"""Declared chapter parameters: names, defaults, allowed ranges, help.

A chapter's :class:`Specification` is the single source of truth for what
its notebook's ``parameters`` cell may hold. The command line, the study's
``Config`` and the tests all validate against it, so a bad value fails before
any notebook runs, with a message that names the parameter and the range.
"""

from __future__ import annotations

from dataclasses import dataclass

from lib._checks import check_in, check_int, check_real

__all__ = ["Choice", "Integer", "Real", "Specification", "Text"]


@dataclass(frozen=True)
class Choice:
    name: str
    default: str
    choices: tuple[str, ...]
    help: str = ""

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

    def validate(self, value, caller):
        return check_real(value, name=self.name, caller=caller, low=self.low, high=self.high)

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

    def validate(self, value, caller):
        if not isinstance(value, str):
            raise TypeError(f"The {self.name!r} parameter of {caller} must be {self.allowed}. "
                            f"Got {value!r} instead.")
        return value

    def parse(self, text: str):
        return text

    @property
    def allowed(self) -> str:
        return "a str (empty for none)"


@dataclass(frozen=True)
class Specification:
    """The parameters of one chapter."""

    chapter: str
    parameters: tuple

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
        return {name: self[name].validate(value, caller) for name, value in values.items()}

    def finish_config(self, config, sizes: dict) -> None:
        """Validate a frozen chapter ``Config`` in place and attach its preset's ``sizes``.

        Called from ``Config.__post_init__``: every declared parameter is read
        from the dataclass, checked and coerced, and ``config.sizes`` becomes a
        copy of ``sizes[config.preset]``.
        """
        values = self.validate({name: getattr(config, name) for name in self.names})
        for name, value in values.items():
            object.__setattr__(config, name, value)
        object.__setattr__(config, "sizes", dict(sizes[config.preset]))

    def parse(self, pairs: list[tuple[str, str]]) -> dict:
        """Turn command-line ``(name, text)`` pairs into validated values."""
        raw = {}
        for name, text in pairs:
            raw[name] = self[name].parse(text) if name in self.names else text
        return self.validate(raw)
