"""``dataclass`` for the modules on the scoring path, without its import-time cost (a device's cold start).

``dataclasses.dataclass`` compiles generated source for ``__init__``, ``__repr__``, ``__eq__``, ``__hash__``
and, when frozen, ``__setattr__``/``__delattr__``: ~0.9 ms a class on Python 3.11, and ``import dataclasses``
brings ``inspect`` (on 3.9/3.10, where numpy does not already import it). The manifest alone has a dozen
such classes, all built on ``import edgefin_runtime``. The decorator here builds the same classes from
shared, hand-written methods instead: the same constructor signature (positional or keyword, defaults,
``field(default_factory=...)``, ``__post_init__``), value equality, hashing when frozen, the same repr, and
``FrozenInstanceError`` on assignment. ``dataclasses.replace``/``asdict``/``fields``/``is_dataclass`` work on
them: ``__dataclass_fields__`` is built (by ``dataclasses`` itself, on a shadow class) the first time
something asks for it, which the scoring path never does.

Type checkers see the real ``dataclasses`` functions (``TYPE_CHECKING``), so annotations and call sites
are checked exactly as for a dataclass. Supported: what the runtime uses (``frozen=``, defaults,
``default_factory``, ``__post_init__``, no inheritance between these classes, no ClassVar/InitVar).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["asdict", "dataclass", "field", "replace"]

if TYPE_CHECKING:
    from dataclasses import asdict, dataclass, field, replace
else:
    _MISSING = object()

    class _Factory:
        """What ``field(default_factory=f)`` leaves in the class body until the decorator reads it."""

        __slots__ = ("factory",)

        def __init__(self, factory):
            self.factory = factory

    def field(*, default=_MISSING, default_factory=_MISSING):
        if default_factory is not _MISSING:
            return _Factory(default_factory)
        if default is _MISSING:
            raise TypeError("field(): give default= or default_factory=")
        return default

    def asdict(obj, *, dict_factory=dict):
        import dataclasses

        return dataclasses.asdict(obj, dict_factory=dict_factory)

    def replace(obj, **changes):
        import dataclasses

        return dataclasses.replace(obj, **changes)

    def dataclass(cls=None, /, *, frozen=False):
        def wrap(c):
            return _build(c, frozen)

        return wrap if cls is None else wrap(cls)

    def _frozen_error(message):
        from dataclasses import FrozenInstanceError

        return FrozenInstanceError(message)

    class _LazyFields:
        """``cls.__dataclass_fields__`` on first access: ``dataclasses`` processes a shadow class with the
        same annotations and defaults (no methods generated) and its fields replace this descriptor."""

        def __init__(self, annotations, defaults, factories, frozen):
            self.spec = (annotations, defaults, factories, frozen)

        def __get__(self, obj, owner):
            import dataclasses

            annotations, defaults, factories, frozen = self.spec
            body = {"__annotations__": dict(annotations), "__module__": owner.__module__, "__doc__": owner.__doc__}
            body.update(defaults)
            body.update({k: dataclasses.field(default_factory=f) for k, f in factories.items()})
            shadow = dataclasses.dataclass(type(owner.__name__, (), body), init=False, repr=False, frozen=frozen)
            type.__setattr__(owner, "__dataclass_params__", shadow.__dataclass_params__)
            fields = shadow.__dataclass_fields__
            type.__setattr__(owner, "__dataclass_fields__", fields)
            return fields

    def _build(cls, frozen):
        annotations = cls.__dict__.get("__annotations__", {})
        names = tuple(annotations)
        index = frozenset(names)
        defaults, factories = {}, {}
        for name in names:
            value = cls.__dict__.get(name, _MISSING)
            if isinstance(value, _Factory):
                factories[name] = value.factory
                delattr(cls, name)
            elif value is not _MISSING:
                defaults[name] = value
        set_ = object.__setattr__
        post_init = cls.__dict__.get("__post_init__")
        qualname = cls.__qualname__
        n = len(names)

        def __init__(self, *args, **kwargs):
            if len(args) > n:
                raise TypeError(f"{qualname}() takes {n} positional arguments but {len(args)} were given")
            values = dict(zip(names, args))
            for k, v in kwargs.items():
                if k not in index:
                    raise TypeError(f"{qualname}() got an unexpected keyword argument {k!r}")
                if k in values:
                    raise TypeError(f"{qualname}() got multiple values for argument {k!r}")
                values[k] = v
            for name in names:
                if name in values:
                    value = values[name]
                elif name in defaults:
                    value = defaults[name]
                elif name in factories:
                    value = factories[name]()
                else:
                    raise TypeError(f"{qualname}() missing required argument: {name!r}")
                set_(self, name, value)
            if post_init is not None:
                post_init(self)

        def astuple(self):
            return tuple([getattr(self, name) for name in names])

        def __eq__(self, other):
            if other.__class__ is self.__class__:
                return astuple(self) == astuple(other)
            return NotImplemented

        def __repr__(self):  # the stored values: a repr never runs a field's parse (Manifest.acceptance)
            values = self.__dict__
            return f"{qualname}(" + ", ".join([f"{name}={values[name]!r}" for name in names]) + ")"

        methods = {"__init__": __init__, "__eq__": __eq__, "__repr__": __repr__}
        if frozen:

            def __setattr__(self, name, value):
                raise _frozen_error(f"cannot assign to field {name!r}")

            def __delattr__(self, name):
                raise _frozen_error(f"cannot delete field {name!r}")

            def __hash__(self):
                return hash(astuple(self))

            methods.update(__setattr__=__setattr__, __delattr__=__delattr__, __hash__=__hash__)
        else:
            methods["__hash__"] = None  # as dataclass(eq=True): mutable, so unhashable
        for name, fn in methods.items():
            if fn is not None:
                fn.__qualname__ = f"{qualname}.{name}"
            if name not in cls.__dict__:
                setattr(cls, name, fn)
        cls.__dataclass_fields__ = _LazyFields(annotations, defaults, factories, frozen)
        return cls
