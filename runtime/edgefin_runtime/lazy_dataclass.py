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

    class _Spec:
        """What the shared methods below read from a class: its fields, defaults and name."""

        __slots__ = ("names", "index", "defaults", "factories", "post_init", "qualname")

        def __init__(self, names, defaults, factories, post_init, qualname):
            self.names, self.index = names, frozenset(names)
            self.defaults, self.factories = defaults, factories
            self.post_init, self.qualname = post_init, qualname

    # One set of methods shared by every class (each reads its class's _Spec): building a class costs a few
    # attribute assignments, not seven new functions (~0.2 ms of a device's cold start over 18 classes).
    _set = object.__setattr__

    def _init(self, *args, **kwargs):
        spec = type(self).__lazy_spec__
        names = spec.names
        if len(args) > len(names):
            raise TypeError(f"{spec.qualname}() takes {len(names)} positional arguments but {len(args)} were given")
        values = dict(zip(names, args))
        for k, v in kwargs.items():
            if k not in spec.index:
                raise TypeError(f"{spec.qualname}() got an unexpected keyword argument {k!r}")
            if k in values:
                raise TypeError(f"{spec.qualname}() got multiple values for argument {k!r}")
            values[k] = v
        defaults, factories = spec.defaults, spec.factories
        for name in names:
            if name in values:
                value = values[name]
            elif name in defaults:
                value = defaults[name]
            elif name in factories:
                value = factories[name]()
            else:
                raise TypeError(f"{spec.qualname}() missing required argument: {name!r}")
            _set(self, name, value)
        if spec.post_init is not None:
            spec.post_init(self)

    def _astuple(self):
        return tuple([getattr(self, name) for name in type(self).__lazy_spec__.names])

    def _eq(self, other):
        if other.__class__ is self.__class__:
            return _astuple(self) == _astuple(other)
        return NotImplemented

    def _repr(self):  # the stored values: a repr never runs a field's parse (Manifest.acceptance)
        spec, values = type(self).__lazy_spec__, self.__dict__
        return f"{spec.qualname}(" + ", ".join([f"{name}={values[name]!r}" for name in spec.names]) + ")"

    def _frozen_setattr(self, name, value):
        raise _frozen_error(f"cannot assign to field {name!r}")

    def _frozen_delattr(self, name):
        raise _frozen_error(f"cannot delete field {name!r}")

    def _frozen_hash(self):
        return hash(_astuple(self))

    _METHODS = {"__init__": _init, "__eq__": _eq, "__repr__": _repr}
    _FROZEN = {"__setattr__": _frozen_setattr, "__delattr__": _frozen_delattr, "__hash__": _frozen_hash}

    def _build(cls, frozen):
        annotations = cls.__dict__.get("__annotations__", {})
        names = tuple(annotations)
        defaults, factories = {}, {}
        for name in names:
            value = cls.__dict__.get(name, _MISSING)
            if isinstance(value, _Factory):
                factories[name] = value.factory
                delattr(cls, name)
            elif value is not _MISSING:
                defaults[name] = value
        cls.__lazy_spec__ = _Spec(names, defaults, factories, cls.__dict__.get("__post_init__"), cls.__qualname__)
        own = cls.__dict__
        for name, fn in _METHODS.items():
            if name not in own:
                setattr(cls, name, fn)
        if frozen:
            for name, fn in _FROZEN.items():
                if name not in own:
                    setattr(cls, name, fn)
        elif "__hash__" not in own or own["__hash__"] is None:
            cls.__hash__ = None  # as dataclass(eq=True): mutable, so unhashable
        cls.__dataclass_fields__ = _LazyFields(annotations, defaults, factories, frozen)
        return cls
