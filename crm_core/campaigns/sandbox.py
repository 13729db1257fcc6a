"""The Jinja2 sandbox campaign templates render in, with every way to make work bounded.

Anyone holding a campaign key writes templates, and the preview renders them
inside a web request. The immutable sandbox keeps a template from reaching the
session or changing data; this module keeps it from exhausting the process.
Each render of one part runs on a ``RenderBudget``:

* no value an expression builds (a string, a list of strings, a number as
  text) is larger than ``MAX_VALUE_CHARS``, checked *before* ``+``, ``*``,
  ``%``, ``~``, ``str.format``, ``join``, ``replace`` and the padding filters
  build it;
* format widths and precisions, and padding widths, are at most ``MAX_WIDTH``;
* loops run at most ``MAX_LOOP_ITERATIONS`` times in all, operations (calls,
  filters, operators, attribute lookups) at most ``MAX_OPERATIONS``, macros
  and recursive loops nest at most ``MAX_CALL_DEPTH`` deep;
* everything written, macro bodies and ``{% set %}`` blocks included, is at
  most ``MAX_WRITTEN_CHARS``; the part itself at most ``MAX_PART_CHARS``;
* and, as the last resort for what the counts miss, one render stops after
  ``MAX_RENDER_SECONDS``.

Going past a bound raises ``TemplateBoundError``, which names the bound.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import Namespace

MAX_PART_CHARS = 1024 * 1024
MAX_VALUE_CHARS = MAX_PART_CHARS
MAX_WRITTEN_CHARS = 4 * MAX_PART_CHARS
MAX_WIDTH = 1000
MAX_JSON_INDENT = 8
MAX_LOOP_ITERATIONS = 10_000
MAX_OPERATIONS = 25_000
MAX_CALL_DEPTH = 20
MAX_INT_BITS = 4096
MAX_RENDER_SECONDS = 1.0


class TemplateBoundError(SecurityError):
    """A render went past one of the bounds; ``bound`` names it."""

    def __init__(self, bound: str, limit: float) -> None:
        super().__init__(f"exceeds the bound on {bound} ({limit:,})")
        self.bound = bound


@dataclass
class RenderBudget:
    """What one render of one part has used so far."""

    deadline: float = field(default_factory=lambda: time.monotonic() + MAX_RENDER_SECONDS)
    operations: int = 0
    iterations: int = 0
    written: int = 0
    depth: int = 0

    def tick(self) -> None:
        """One more operation; the clock is read here too."""
        self.operations += 1
        if self.operations > MAX_OPERATIONS:
            raise TemplateBoundError("operations", MAX_OPERATIONS)
        if time.monotonic() > self.deadline:
            raise TemplateBoundError("render time in seconds", MAX_RENDER_SECONDS)

    def iterate(self) -> None:
        """One more loop iteration."""
        self.iterations += 1
        if self.iterations > MAX_LOOP_ITERATIONS:
            raise TemplateBoundError("loop iterations", MAX_LOOP_ITERATIONS)
        self.tick()

    def write(self, size: int) -> None:
        """``size`` more characters written somewhere in the render."""
        self.written += size
        if self.written > MAX_WRITTEN_CHARS:
            raise TemplateBoundError("characters written", MAX_WRITTEN_CHARS)


_BUDGET: ContextVar[RenderBudget | None] = ContextVar("template_render_budget", default=None)


def current_budget() -> RenderBudget:
    """The running render's budget (a fresh one outside a render, e.g. while compiling)."""
    return _BUDGET.get() or RenderBudget()


@contextlib.contextmanager
def render_budget() -> Iterator[RenderBudget]:
    """A fresh budget for the render inside the block."""
    token = _BUDGET.set(RenderBudget())
    try:
        yield _BUDGET.get() or RenderBudget()
    finally:
        _BUDGET.reset(token)


def measure(value: Any, limit: int = MAX_VALUE_CHARS) -> int:
    """About how many characters ``value`` becomes as text; counting stops once past ``limit``.

    Containers count their items (a list holding one long string many times
    is as long as all its copies), so the walk costs at most ``limit`` steps.
    """
    total = 0
    pending: list[Any] = [value]
    while pending and total <= limit:
        item = pending.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            pending.extend(itertools.islice(itertools.chain.from_iterable(item.items()), limit))
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            pending.extend(itertools.islice(item, limit))
        elif isinstance(item, Namespace):
            pending.append(object.__getattribute__(item, "_Namespace__attrs"))
        else:
            total += 24
    return total


def check_value(value: Any) -> int:
    """``value``'s size; TemplateBoundError when it is larger than any value may be."""
    size = measure(value)
    if size > MAX_VALUE_CHARS:
        raise TemplateBoundError("value size in characters", MAX_VALUE_CHARS)
    return size


def _check_estimate(size: float) -> None:
    if size > MAX_VALUE_CHARS:
        raise TemplateBoundError("value size in characters", MAX_VALUE_CHARS)


def _check_width(value: Any, bound: str = "padding width", limit: int = MAX_WIDTH) -> None:
    if isinstance(value, int) and abs(value) > limit:
        raise TemplateBoundError(bound, limit)


def _finalize(value: Any) -> Any:
    """Every ``{{ … }}`` passes here before it becomes text: it is measured and counted."""
    current_budget().write(check_value(value))
    return value


# --- printf (%) and str.format strings ---------------------------------------------------------

_PRINTF_SPEC = re.compile(r"[#0\- +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?")
_DIGITS = re.compile(r"\d+")


def _width_of(digits: str | None, bound: str) -> int:
    if not digits:
        return 0
    if digits == "*":
        raise TemplateBoundError(bound, MAX_WIDTH)  # a width taken from the arguments
    if len(digits) > len(str(MAX_WIDTH)) or int(digits) > MAX_WIDTH:
        raise TemplateBoundError(bound, MAX_WIDTH)
    return int(digits)


def _printf_fields(template: str | bytes) -> tuple[int, int]:
    """How many conversions a %-format has, and the sum of their widths and precisions."""
    text = template.decode("latin-1") if isinstance(template, bytes) else template
    count = widths = 0
    position = text.find("%")
    while position != -1:
        position += 1
        if text.startswith("%", position):
            position = text.find("%", position + 1)
            continue
        if text.startswith("(", position):  # a mapping key; parentheses may nest
            depth = 0
            while position < len(text):
                depth += {"(": 1, ")": -1}.get(text[position], 0)
                position += 1
                if depth == 0:
                    break
        spec = _PRINTF_SPEC.match(text, position)
        assert spec is not None  # every part of the pattern is optional
        widths += _width_of(spec.group(1), "format width")
        widths += _width_of(spec.group(2), "format precision")
        count += 1
        position = text.find("%", spec.end())
    return count, widths


def _format_fields(template: str) -> tuple[int, int]:
    """How many fields a str.format template has, and the sum of their widths and precisions."""
    count = widths = 0
    for _literal, name, spec, _conversion in string.Formatter().parse(template):
        if name is None:
            continue
        count += 1
        if "{" in (spec or ""):
            raise SecurityError("a format spec may not contain another field")
        for digits in _DIGITS.findall(spec or ""):
            widths += _width_of(digits, "format width")
    return count, widths


def _check_format(template: str | bytes, fields: tuple[int, int], arguments: Any) -> None:
    """The formatted text, at most: every field as long as the longest argument, padded."""
    count, widths = fields
    values = list(arguments.values()) if isinstance(arguments, Mapping) else arguments
    if not isinstance(values, list | tuple):
        values = [values]
    longest = max((measure(value) for value in values), default=0)
    _check_estimate(len(template) + count * longest + widths)


# --- operators, methods and filters ------------------------------------------------------------


def _check_binop(operator: str, left: Any, right: Any) -> None:
    sequence = (str, bytes, list, tuple)
    if operator == "+" and isinstance(left, sequence) and isinstance(right, sequence):
        _check_estimate(measure(left) + measure(right))
    elif operator == "*":
        for items, times in ((left, right), (right, left)):
            if isinstance(items, sequence) and isinstance(times, int):
                _check_estimate(measure(items) * times)
        both_int = isinstance(left, int) and isinstance(right, int)
        if both_int and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise TemplateBoundError("integer size in bits", MAX_INT_BITS)
    elif operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
        if abs(left) > 1 and left.bit_length() * right > MAX_INT_BITS:
            raise TemplateBoundError("integer size in bits", MAX_INT_BITS)
    elif operator == "%" and isinstance(left, str | bytes):
        _check_format(left, _printf_fields(left), right)


def _materialized(items: Any) -> list[Any]:
    """An iterable as a list, refusing one longer than any value may be."""
    values = list(itertools.islice(items, MAX_VALUE_CHARS + 1))
    _check_estimate(len(values))
    return values


def _check_join(separator: Any, items: list[Any]) -> None:
    _check_estimate(measure(items) + len(items) * measure(separator))


def _check_replace(text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str | bytes) and isinstance(old, str | bytes):
        times = text.count(old) if old else len(text) + 1  # type: ignore[arg-type]
        _check_estimate(len(text) + times * measure(new))


def _lines(text: Any) -> int:
    return text.count("\n") + 1 if isinstance(text, str) else 1


def _words(text: Any) -> int:
    return text.count(" ") + text.count("\n") + 1 if isinstance(text, str) else 1


def _method_arguments(method: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Check a call of a str or bytes method that can build more than it is given."""
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, str | bytes):
        return args
    name = getattr(method, "__name__", "")
    if name in ("center", "ljust", "rjust", "zfill") and args:
        _check_width(args[0])
    elif name == "expandtabs":
        size = args[0] if args and isinstance(args[0], int) else 8
        _check_width(size)
        tabs = owner.count(b"\t") if isinstance(owner, bytes) else owner.count("\t")
        _check_estimate(len(owner) + tabs * size)
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1])
    elif name == "join" and args:
        items = _materialized(args[0])
        _check_join(owner, items)
        return (items, *args[1:])
    elif name in ("translate", "maketrans"):
        raise SecurityError(f"str.{name} is not available in templates")
    return args


def _filter_checks() -> dict[str, Callable[..., None]]:
    """Per filter, what it would build, checked from its arguments before it runs."""

    def center(value: Any, width: Any = 80, *_: Any) -> None:
        _check_width(width)

    def indent(value: Any, width: Any = 4, *_: Any, **__: Any) -> None:
        _check_width(width)
        pad = width if isinstance(width, int) else measure(width)
        _check_estimate(measure(value) + _lines(value) * pad)

    def wordwrap(value: Any, width: Any = 79, brk: Any = True, wrapstring: Any = None,
                 *_: Any, **kwargs: Any) -> None:  # fmt: skip
        wrap = kwargs.get("wrapstring", wrapstring)
        size = measure(value)
        _check_estimate(size + (_words(value) + size // max(1, int(width or 1))) * measure(wrap))

    def replace(value: Any, old: Any = "", new: Any = "", *_: Any) -> None:
        _check_replace(value, old, new)

    def batch_or_slice(value: Any, count: Any = 1, *_: Any, **__: Any) -> None:
        _check_width(count, "batch or slice count")

    def format_(value: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(value, str):
            _check_format(value, _printf_fields(value), kwargs or args)

    def urlize(value: Any, *args: Any, **kwargs: Any) -> None:
        extra = sum(measure(v) for v in (*args, *kwargs.values()))
        _check_estimate(3 * measure(value) + _words(value) * (extra + 64))

    def round_(value: Any, precision: Any = 0, *_: Any) -> None:
        _check_width(precision, "rounding precision")

    def tojson(value: Any, indent: Any = None) -> None:
        _check_width(indent, "JSON indent", MAX_JSON_INDENT)

    return {
        "center": center,
        "indent": indent,
        "wordwrap": wordwrap,
        "replace": replace,
        "batch": batch_or_slice,
        "slice": batch_or_slice,
        "format": format_,
        "urlize": urlize,
        "round": round_,
        "tojson": tojson,
    }


def _checked_result(result: Any) -> Any:
    if isinstance(result, str | bytes | list | tuple | dict | set):
        check_value(result)
    return result


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` (a filter), counted, with its arguments and result measured."""
    passed = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0
    check = _FILTER_CHECKS.get(name)

    @functools.wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        current_budget().tick()
        for value in (*args[passed:], *kwargs.values()):
            check_value(value)
        if name == "join" and len(args) > passed:
            items = _materialized(args[passed])
            separator = args[passed + 1] if len(args) > passed + 1 else kwargs.get("d", "")
            _check_join(separator, items)
            args = (*args[:passed], items, *args[passed + 1 :])
        elif check is not None and len(args) > passed:
            check(*args[passed:], **kwargs)
        return _checked_result(function(*args, **kwargs))

    return bounded


_FILTER_CHECKS = _filter_checks()


# --- the environment ---------------------------------------------------------------------------


class BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator with three hooks: written text, ``~`` and loop iterations."""

    def _output_const_repr(self, group: Iterable[Any]) -> str:
        # Literal template text is counted where it is written, in loops and macros too.
        return f"environment.count_output({super()._output_const_repr(group)})"

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # As Jinja writes it, with the parts measured before they are joined.
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"{join}(environment.concat_parts((")
        for part in node.nodes:
            self.visit(part, frame)
            self.write(", ")
        self.write(")))")

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        # Every loop iterates through ``bounded_iterable``, which counts the iterations.
        if not getattr(node, "bounded", False):
            node.iter = nodes.Call(
                nodes.EnvironmentAttribute("bounded_iterable"),
                [node.iter],
                [],
                None,
                None,
                lineno=node.lineno,
            )
            node.bounded = True  # type: ignore[attr-defined]
        super().visit_For(node, frame)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with this module's budget on everything a template does."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    code_generator_class = BoundedCodeGenerator

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=_finalize, **options)
        # Lorem ipsum takes a count of paragraphs; campaign mail has no use for it.
        self.globals.pop("lipsum", None)
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # Jinja's default renders a blocked attribute as "", hiding the attempt; fail instead.
        raise SecurityError(f"access to attribute {attribute!r} is not allowed")

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        current_budget().tick()
        _check_binop(operator, left, right)
        return _checked_result(super().call_binop(context, operator, left, right))

    def getattr(self, obj: Any, attribute: str) -> Any:
        current_budget().tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        current_budget().tick()
        return super().getitem(obj, argument)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        formatter = super().wrap_str_format(value)
        if formatter is None:
            return None
        template = value.__self__
        fields = _format_fields(template)
        is_map = value.__name__ == "format_map"

        @functools.wraps(formatter)
        def bounded(*args: Any, **kwargs: Any) -> str:
            arguments = args[0] if is_map and args else (*args, *kwargs.values())
            _check_format(template, fields, arguments)
            return formatter(*args, **kwargs)

        return bounded

    def call(
        __self,  # Jinja's names: a template's keyword arguments cannot clash with them
        __context: Any,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        budget = current_budget()
        budget.tick()
        for value in (*args, *kwargs.values()):
            check_value(value)
        nested = isinstance(__obj, Macro | LoopContext)
        if isinstance(__obj, LoopContext) and args:  # a recursive loop's next level
            args = (__self.bounded_iterable(args[0]), *args[1:])
        args = _method_arguments(__obj, args)
        if nested:
            budget.depth += 1
            if budget.depth > MAX_CALL_DEPTH:
                raise TemplateBoundError("macro and recursive loop depth", MAX_CALL_DEPTH)
        try:
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            if nested:
                budget.depth -= 1
        return _checked_result(result)

    def bounded_iterable(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """``iterable``, one counted iteration at a time."""
        budget = current_budget()
        for item in iterable:
            budget.iterate()
            yield item

    def concat_parts(self, parts: Sequence[Any]) -> Sequence[Any]:
        """The parts of a ``~`` expression, if what they make together is not too large."""
        current_budget().tick()
        _check_estimate(sum(measure(part) for part in parts))
        return parts

    def count_output(self, text: str) -> str:
        """Literal template text, counted as written."""
        current_budget().write(len(text))
        return text
