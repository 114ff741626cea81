"""FHIRPath tokenizer and precedence-climbing parser producing a small AST.

Operator precedence and the lexical rules follow the grammar that fhirpathpy is generated
from (``fhirpathpy/parser/FHIRPath.g4``, the N1 grammar), so both parse an expression the same
way: in that grammar ``|`` binds tighter than the inequalities and ``is``/``as`` looser, unlike
the table in the prose of the specification.  Date, time and quantity literals are not parsed:
an expression with one raises :class:`Unsupported` and is left to fhirpathpy.
See http://hl7.org/fhirpath/N1/#grammar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


class Unsupported(Exception):
    """The expression uses syntax this compiler leaves to fhirpathpy."""


@dataclass(frozen=True)
class Node:
    """Base class of the syntax tree."""


@dataclass(frozen=True)
class Literal(Node):
    values: tuple[Any, ...]  # () for the empty collection {}


@dataclass(frozen=True)
class Member(Node):
    name: str


@dataclass(frozen=True)
class Function(Node):
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class This(Node):
    pass


@dataclass(frozen=True)
class Variable(Node):
    name: str


@dataclass(frozen=True)
class Invoke(Node):
    """``target.invocation`` where the invocation is a Member, Function or This."""

    target: Node
    invocation: Node


@dataclass(frozen=True)
class Indexer(Node):
    target: Node
    index: Node


@dataclass(frozen=True)
class Unary(Node):
    op: str
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class TypeTest(Node):
    op: str  # "is" or "as"
    operand: Node
    type_name: str


# Binding power of infix operators, tighter binds higher (FHIRPath.g4 alternative order).
BINARY_POWER = {
    "*": 10, "/": 10, "div": 10, "mod": 10,
    "+": 9, "-": 9, "&": 9,
    "|": 8,
    "<=": 7, "<": 7, ">": 7, ">=": 7,
    "is": 6, "as": 6,
    "=": 5, "~": 5, "!=": 5, "!~": 5,
    "in": 4, "contains": 4,
    "and": 3,
    "or": 2, "xor": 2,
    "implies": 1,
}  # fmt: skip
_UNARY_POWER = 11
_CALENDAR = {
    f"{unit}{plural}"
    for unit in ("year", "month", "week", "day", "hour", "minute", "second", "millisecond")
    for plural in ("", "s")
}
# Tokens of the grammar that can never be identifiers; is/as/in/contains can.
_RESERVED = {"and", "or", "xor", "implies", "div", "mod", "true", "false"} | _CALENDAR
_WORD_OPERATORS = {"and", "or", "xor", "implies", "div", "mod", "is", "as", "in", "contains"}

_TOKEN = re.compile(
    r"""(?P<space>\s+|//[^\r\n]*|/\*.*?\*/)
      | (?P<string>'(?:\\.|[^'\\])*')
      | (?P<delimited>`(?:\\.|[^`\\])*`)
      | (?P<number>[0-9]+(?:\.[0-9]+)?)
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<special>\$(?:this|index|total))
      | (?P<symbol><=|>=|!=|!~|[-+*/&|<>=~.,()\[\]{}%])
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class _Token:
    kind: str  # string, delimited, number, word, special, symbol, end
    text: str


def tokenize(expression: str) -> list[_Token]:
    """The tokens of ``expression``; raises Unsupported on characters outside the subset."""
    tokens: list[_Token] = []
    position = 0
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if match is None:  # '@' date/time literals, stray characters
            raise Unsupported(f"cannot tokenize at {position}: {expression[position:][:10]!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group()))
        position = match.end()
    tokens.append(_Token("end", ""))
    return tokens


def unescape(text: str) -> str:
    """A string literal's value, decoded exactly as fhirpathpy's ``string_literal`` does."""
    value = re.sub(r"^['\"]|['\"]$", "", text)
    for escaped, plain in (
        ("\\'", "'"), ("\\`", "`"), ('\\"', '"'), ("\\r", "\r"), ("\\n", "\n"),
        ("\\t", "\t"), ("\\f", "\f"), ("\\\\", "\\"),
    ):  # fmt: skip
        value = value.replace(escaped, plain)
    return re.sub(r"\\(u\d{4})", lambda m: chr(int(m.group(1)[1:], 16)), value)


def number(text: str) -> int | Decimal:
    """A number literal's value as fhirpathpy has it: an int when integral, else a Decimal."""
    value = Decimal(text)
    return int(value) if value == int(value) else value


class _Parser:
    def __init__(self, expression: str) -> None:
        self.tokens = tokenize(expression)
        self.index = 0

    def peek(self, offset: int = 0) -> _Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def take(self) -> _Token:
        token = self.peek()
        self.index += 1
        return token

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text or token.kind not in ("symbol", "word"):
            raise Unsupported(f"expected {text!r}, found {token.text!r}")

    def expression(self, min_power: int = 0) -> Node:
        left = self.prefix()
        while True:
            token = self.peek()
            if token.kind == "symbol" and token.text == ".":
                self.take()
                left = Invoke(left, self.invocation())
                continue
            if token.kind == "symbol" and token.text == "[":
                self.take()
                index = self.expression()
                self.expect("]")
                left = Indexer(left, index)
                continue
            op = token.text if token.kind in ("symbol", "word") else ""
            power = BINARY_POWER.get(op)
            if power is None or power < min_power:
                return left
            if token.kind == "word" and op not in _WORD_OPERATORS:
                return left
            self.take()
            if op in ("is", "as"):
                left = TypeTest(op, left, self.qualified_identifier())
            else:
                left = Binary(op, left, self.expression(power + 1))

    def prefix(self) -> Node:
        token = self.peek()
        if token.kind == "symbol" and token.text in ("+", "-"):
            self.take()
            return Unary(token.text, self.expression(_UNARY_POWER))
        return self.term()

    def term(self) -> Node:
        token = self.peek()
        if token.kind == "symbol":
            if token.text == "(":
                self.take()
                inner = self.expression()
                self.expect(")")
                return inner
            if token.text == "{":
                self.take()
                self.expect("}")
                return Literal(())
            if token.text == "%":
                self.take()
                name = self.take()
                if name.kind in ("word", "delimited"):
                    return Variable(self.identifier(name))
                raise Unsupported("a %'string' constant")
            raise Unsupported(f"unexpected {token.text!r}")
        if token.kind == "string":
            self.take()
            return Literal((unescape(token.text),))
        if token.kind == "number":
            self.take()
            self.reject_quantity()
            return Literal((number(token.text),))
        if token.kind == "word" and token.text in ("true", "false"):
            self.take()
            return Literal((token.text == "true",))
        return self.invocation()

    def reject_quantity(self) -> None:
        following = self.peek()
        if following.kind == "string" or following.text in _CALENDAR:
            raise Unsupported("quantity literal")

    def invocation(self) -> Node:
        token = self.take()
        if token.kind == "special":
            if token.text == "$this":
                return This()
            raise Unsupported(token.text)
        name = self.identifier(token)
        following = self.peek()
        if following.kind == "symbol" and following.text == "(":
            self.take()
            args: list[Node] = []
            if not (self.peek().kind == "symbol" and self.peek().text == ")"):
                args.append(self.expression())
                while self.peek().kind == "symbol" and self.peek().text == ",":
                    self.take()
                    args.append(self.expression())
            self.expect(")")
            return Function(name, tuple(args))
        return Member(name)

    def identifier(self, token: _Token) -> str:
        if token.kind == "word" and token.text not in _RESERVED:
            return token.text
        if token.kind == "delimited" and "\\" not in token.text:
            return token.text[1:-1]
        raise Unsupported(f"expected an identifier, found {token.text!r}")

    def qualified_identifier(self) -> str:
        parts = [self.identifier(self.take())]
        while self.peek().kind == "symbol" and self.peek().text == ".":
            self.take()
            parts.append(self.identifier(self.take()))
        return ".".join(parts)


def parse(expression: str) -> Node:
    """The syntax tree of ``expression``; raises Unsupported outside the compiled subset."""
    parser = _Parser(expression)
    tree = parser.expression()
    if parser.peek().kind != "end":
        raise Unsupported(f"unexpected {parser.peek().text!r}")
    return tree
