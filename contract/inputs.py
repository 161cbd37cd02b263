"""Text a user hands a command (specs, trial configs, claims and class-name files), read and
parsed so that no input can hang, exhaust memory or be read two ways, and errors as one short
line. It lives in `contract` because all three commands (`l2l`, `l2l-sweep`, `l2l-analysis`)
import that package, and it imports neither torch nor Ray.

`read_text(path, what)` refuses, before reading: a missing path, a directory, anything that is
not a regular file (a FIFO would block the read forever, a device such as /dev/zero never
ends), a file larger than `max_bytes`, NUL bytes (a binary file) and text that is not UTF-8.
`load_yaml(text, what)` parses with PyYAML's safe loader and refuses: duplicate keys in one
mapping (YAML leaves the choice to the parser; PyYAML keeps the last silently), aliases that
expand to more than MAX_VALUES values (a "billion laughs" spec at any depth), nesting deeper
than MAX_DEPTH. `short(value)` is a value's repr cut to a length an error line can carry, and
`one_line(message)` makes any message one printable line of bounded length. No field of a spec
or config takes NaN, infinity or an integer beyond 64 bits, so `load_yaml` refuses them
wherever they stand (`check_numbers`), naming the place (`grid.alpha[0]`).

Every refusal is an `InputError` whose message starts with `what` (the field or file), so the
commands print it as their usual `error: ...` line.
"""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1 << 20  # a spec or a config is a few KiB; 1 MiB is generous
MAX_VALUES = 100_000  # scalars, lists and mappings after alias expansion
MAX_DEPTH = 64  # nesting of lists and mappings
MAX_LINE = 400  # characters of an error line
MAX_REPR = 80  # characters of a value quoted in an error
MAX_INT = 2**63 - 1  # no count, seed or size of this system needs more


class InputError(ValueError):
    """Input refused; the message is one line that starts with the field or file."""


def short(value: Any, limit: int = MAX_REPR) -> str:
    """repr(value), cut to `limit` characters with the length of what was left out."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def one_line(message: str, limit: int = MAX_LINE) -> str:
    """`message` as one printable line: control characters escaped, at most `limit`
    characters (an error must never echo megabytes of input back)."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(message))
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text) - limit} more characters)"
    return text


URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(text) -> bool:
    """Whether a location is a URI (`s3://...`) rather than a local path (contract/storage.py
    opens both; this test needs no pyarrow)."""
    return isinstance(text, str) and URI_RE.match(text) is not None


def read_text(path: str | os.PathLike, what: str, max_bytes: int = MAX_BYTES) -> str:
    """The UTF-8 text of a local regular file of at most `max_bytes` bytes (a BOM dropped);
    contract/storage.py `read_text` reads one on object storage the same way."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise InputError(f"{what}: file not found: {p}") from None
    except OSError as e:
        raise InputError(f"{what}: cannot read {p}: {e.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{what}: cannot read {p}: it is a directory; give a file")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{what}: cannot read {p}: not a regular file (a FIFO, device or "
                         "socket); give a file")
    if st.st_size > max_bytes:
        raise InputError(f"{what}: {p} is {st.st_size:,} bytes; at most {max_bytes:,} allowed")
    try:
        # O_NONBLOCK: should the path turn into a FIFO after the check, open() must not wait
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise InputError(f"{what}: cannot read {p}: {e.strerror}") from None
    return decode_text(data, what, str(p), max_bytes)


def decode_text(data: bytes, what: str, name: str, max_bytes: int = MAX_BYTES) -> str:
    """`data` as text, refused when too large, binary (NUL bytes) or not UTF-8."""
    if len(data) > max_bytes:
        raise InputError(f"{what}: {name} is larger than {max_bytes:,} bytes")
    if b"\x00" in data:
        raise InputError(f"{what}: {name} is binary (it holds NUL bytes), not YAML text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{what}: {name} is not UTF-8 text (byte {e.start} is "
                         f"0x{data[e.start]:02x})") from None
    return text.removeprefix("\ufeff")


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing duplicate keys (a `<<` merge may still be overridden)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key, _ in node.value:
                if key.tag == "tag:yaml.org,2002:merge" or not isinstance(key, yaml.ScalarNode):
                    continue
                k = (key.tag, key.value)
                if k in seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping", node.start_mark,
                        f"duplicate key {short(key.value)} (first at line {seen[k] + 1})",
                        key.start_mark)
                seen[k] = key.start_mark.line
        return super().construct_mapping(node, deep)


def _expanded(node, memo: dict, depth: int, what: str) -> int:
    """Values `node` stands for once aliases are expanded; refuses too many or too deep."""
    if depth > MAX_DEPTH:
        raise InputError(f"{what}: nested more than {MAX_DEPTH} levels deep")
    key = id(node)
    if key in memo:
        return memo[key]
    if isinstance(node, yaml.SequenceNode):
        n = 1 + sum(_expanded(c, memo, depth + 1, what) for c in node.value)
    elif isinstance(node, yaml.MappingNode):
        n = 1 + sum(_expanded(k, memo, depth + 1, what) + _expanded(v, memo, depth + 1, what)
                    for k, v in node.value)
    else:
        n = 1
    if n > MAX_VALUES:
        raise InputError(f"{what}: expands to more than {MAX_VALUES:,} values (YAML aliases "
                         "repeat what they name); write it out or make it smaller")
    memo[key] = n
    return n


def load_yaml(text: str, what: str) -> Any:
    """The one YAML document in `text`, safely (see the module doc); None when empty."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded(node, {}, 0, what)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = e.problem or str(e).splitlines()[0]
        raise InputError(one_line(f"{what}: YAML syntax error{where}: {problem}")) from None
    except yaml.YAMLError as e:
        raise InputError(one_line(f"{what}: YAML syntax error: {str(e).splitlines()[0]}")) \
            from None
    except RecursionError:
        raise InputError(f"{what}: nested more than {MAX_DEPTH} levels deep") from None
    finally:
        loader.dispose()
    check_numbers(data)
    return data


def check_numbers(data: Any) -> None:
    """Refuses NaN, infinities and integers beyond 64 bits anywhere in `data` (nested dicts
    and lists), naming the place: no field takes them, and a check per field misses some."""
    stack = [("", data)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, dict):
            stack.extend((f"{path}.{k}" if path else str(k), x) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend((f"{path}[{i}]", x) for i, x in enumerate(v))
        elif isinstance(v, float) and v != v or v in (float("inf"), float("-inf")):
            raise InputError(one_line(f"{path or 'value'}: expected a finite number, got {v}"))
        elif isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_INT:
            raise InputError(one_line(f"{path or 'value'}: {short(v, 30)} is beyond 64 bits; "
                                      "no field takes numbers this large"))


def read_yaml(path: str | os.PathLike, what: str, max_bytes: int = MAX_BYTES) -> Any:
    """`load_yaml(read_text(path, what))`."""
    return load_yaml(read_text(path, what, max_bytes), what)
