"""The configuration table, generated from the settings models' fields: each variable, the
process that reads it, its default and what it means (the field's description)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from pydantic.fields import FieldInfo

from shared.settings import EnvModel

BEGIN = "<!-- settings:begin -->"
END = "<!-- settings:end -->"
MIB, GIB = 1 << 20, 1 << 30


def settings_table(processes: Sequence[tuple[str, type[EnvModel]]]) -> str:
    """A markdown table with a row per variable, in the models' field order."""
    lines = ["| variable | read by | default | meaning |", "|---|---|---|---|"]
    for process, model in processes:
        for variable, field in _variables(model):
            meaning = (field.description or "").replace("|", "\\|")
            lines.append(f"| `{variable}` | {process} | {shown_default(field)} | {meaning} |")
    return "\n".join(lines)


def _variables(model: type[EnvModel]) -> Iterator[tuple[str, FieldInfo]]:
    for field in model.model_fields.values():
        nested = field.annotation
        if isinstance(nested, type) and issubclass(nested, EnvModel):
            yield from _variables(nested)
        elif isinstance(field.validation_alias, str):
            yield field.validation_alias, field


def shown_default(field: FieldInfo) -> str:
    """The default as one would write the variable; `unset` and `empty` in words."""
    value = None if field.is_required() else field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if value == "" or (isinstance(value, Mapping | tuple) and not value):
        return "empty"
    if isinstance(value, bool):
        return f"`{int(value)}`"
    if isinstance(value, int) and value >= MIB and value % MIB == 0:
        size = f"{value // GIB} GiB" if value % GIB == 0 else f"{value // MIB} MiB"
        return f"`{value}` ({size})"
    if isinstance(value, float):
        return f"`{value:g}`"
    if isinstance(value, tuple):
        return f"`{':'.join(str(part) for part in value)}`"
    return f"`{value}`"


def with_block(text: str, block: str) -> str:
    """`text` with what lies between its settings markers replaced by `block`."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return f"{text[:start]}\n{block}\n{text[end:]}"


def block_of(text: str) -> str:
    """What lies between the settings markers of `text`, without the surrounding newlines."""
    return text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip("\n")
