"""
Building frozen dataclass instances from values that are valid by construction.

A frozen dataclass's generated C{__init__} stores every field with C{object.__setattr__} (its own
C{__setattr__} refuses), which goes through the generic attribute machinery once per field, and
then runs C{__post_init__}'s checks: building a four-field payload object costs more than
decoding its bytes. The decoders build tens of these per IKE message from values their own
parsing has already bounded, so they use a builder made here: it creates the instance and stores
each field through its slot's descriptor, about 40% cheaper, skipping C{__post_init__}.

The result is the same frozen object, equal to and hashable like one built by C{__init__}. Only the
checks are skipped, so a builder is for values that are valid by construction, never for a
caller's arguments.
"""

from dataclasses import fields


def trustedBuilder(cls):
    """
    A function taking all of C{cls}'s fields positionally, in declaration order, and returning an
    instance of the frozen, slotted dataclass C{cls} without running C{__init__}.

    The function is generated the way C{dataclasses} generates C{__init__}, with one assignment
    per field through the slot descriptor's C{__set__}.
    """
    names = [f.name for f in fields(cls)]
    namespace = {"_new": object.__new__, "_cls": cls}
    lines = [f"def build({', '.join(names)}):", "    obj = _new(_cls)"]
    for name in names:
        namespace[f"_set_{name}"] = getattr(cls, name).__set__
        lines.append(f"    _set_{name}(obj, {name})")
    lines.append("    return obj")
    exec("\n".join(lines), namespace)
    build = namespace["build"]
    build.__qualname__ = build.__name__ = f"build{cls.__name__}"
    return build
