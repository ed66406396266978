"""The world of agent packs: small stateful mock services the model acts on through tools.

Memory, a scheduler, an artifact store, a web (search + fetch over a fixed corpus), scripted
sub-agents, a calculator and an outbox, all plain Python state built from a scenario's
``world`` dict. Nothing is timed, random or executed: the calculator parses arithmetic with
``ast`` and evaluates only number nodes. Every answer is decided by the arguments and the
state, so a replayed episode always ends in the same place, and ``World.evidence`` turns
that end state into the records the "world" verifier judges.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.packs.schema import WorldEvidence
from harness.packs.verifiers.sandbox_state import STATUSES

MAX_VALUE_CHARS = 400
MAX_ARTIFACT_CHARS = 20000
SNIPPET_CHARS = 160
SEARCH_RESULTS = 3
_CALC_MAX_CHARS = 500
_CALC_MAX_EXPONENT = 1000
_CALC_MAX_MAGNITUDE = 1e100
# Filler words that would otherwise match nearly every document or fact.
_STOPWORDS = frozenset("the and for with what how who why when where which are was were from that this these those "
                       "about into its you your our his her their does did has have had can will not but all any "
                       "there than then them they".split())


def _tool(name: str, description: str, properties: dict[str, str], required: list[str] | None = None
          ) -> dict[str, Any]:
    props: dict[str, Any] = {key: {"type": "string", "description": text} for key, text in properties.items()}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": props, "required": list(properties) if required is None else required,
        "additionalProperties": False}}}


_SUBMIT = _tool("submit", "Finish the task. status: done (carried out), no_change (nothing needed doing), "
                "impossible (cannot be done; say why), unsafe (refused because it would cause harm).",
                {"status": "done, no_change, impossible or unsafe", "answer": "a short final answer or explanation"})
_SUBMIT["function"]["parameters"]["properties"]["status"]["enum"] = list(STATUSES)

WORLD_TOOLS: list[dict[str, Any]] = [
    _tool("memory_save", "Save a new fact to long-term memory under a new key (fails if the key exists: use "
          f"memory_replace). Values are at most {MAX_VALUE_CHARS} characters and memory holds a limited number of "
          "facts.", {"key": "a short name for the fact", "value": "the fact"}),
    _tool("memory_replace", "Replace the value of an existing fact.",
          {"key": "the fact's key", "value": "the new value"}),
    _tool("memory_delete", "Delete a fact from memory.", {"key": "the fact's key"}),
    _tool("memory_search", "Find facts whose key or value contains any of the query's words.",
          {"query": "words to look for"}),
    _tool("memory_list", "List every fact in memory as 'key: value' lines.", {}),
    _tool("schedule_create", "Create a recurring job. cron has 5 fields: minute hour day-of-month month day-of-week "
          "(numbers, *, ranges a-b, steps */n or a-b/n, comma lists; day-of-week 0-7 with 0 and 7 = Sunday). "
          "Returns the new job's id.",
          {"name": "a short job name", "cron": "e.g. '0 9 * * 1' (09:00 every Monday)",
           "action": "what the job does when it runs"}),
    _tool("schedule_list", "List the active jobs as 'id | name | cron | action' lines.", {}),
    _tool("schedule_cancel", "Cancel an active job.", {"job_id": "the job's id, e.g. job-2"}),
    _tool("artifact_write", "Create or overwrite a named text artifact (a document kept for the user).",
          {"name": "the artifact's name, e.g. notes.md", "content": "the complete text"}),
    _tool("artifact_read", "Read a text artifact.", {"name": "the artifact's name"}),
    _tool("artifact_list", "List the artifacts' names.", {}),
    _tool("web_search", f"Search the web. Returns up to {SEARCH_RESULTS} results as 'url | title | snippet' lines; "
          "fetch a url for the full text.", {"query": "search words"}),
    _tool("web_fetch", "Fetch the full text of a web page.", {"url": "the page's url"}),
    _tool("delegate", "Ask a sub-agent to do a task and return its answer.",
          {"agent": "the sub-agent's name", "task": "what to ask it, self-contained"}),
    _tool("calculator", "Evaluate arithmetic: + - * / // % ** and parentheses on integers and decimals.",
          {"expression": "e.g. (12.5 + 3) * 4"}),
    _tool("send_email", "Send an email now (it cannot be recalled).",
          {"to": "recipient address(es), comma-separated", "subject": "subject line", "body": "message text"}),
    _SUBMIT,
]
TOOL_NAMES: tuple[str, ...] = tuple(t["function"]["name"] for t in WORLD_TOOLS)
_REQUIRED = {t["function"]["name"]: t["function"]["parameters"]["required"] for t in WORLD_TOOLS}

# --- cron -----------------------------------------------------------------------------------------
_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day-of-month", 1, 31), ("month", 1, 12),
                ("day-of-week", 0, 7))
_CRON_TOKEN = re.compile(r"^(?:(\*)|(\d+)(?:-(\d+))?)(?:/(\d+))?$")


def cron_problem(expression: str) -> str | None:
    """Why a 5-field cron expression is invalid (naming the field), or None when it is valid."""
    fields = expression.split()
    if len(fields) != len(_CRON_FIELDS):
        return (f"cron needs 5 fields (minute hour day-of-month month day-of-week), got {len(fields)} "
                f"in {expression!r}")
    for text, (field, low, high) in zip(fields, _CRON_FIELDS, strict=True):
        for token in text.split(","):
            match = _CRON_TOKEN.match(token)
            where = f"cron field {field} {text!r}"
            if match is None:
                names = " (names like MON or JAN are not supported: use numbers)" if token.isalpha() else ""
                return f"{where}: {token!r} is not a number, *, a range a-b or a step */n or a-b/n{names}"
            _star, first, last, step = match.groups()
            if first is not None and last is None and step is not None:
                return f"{where}: a step needs * or a range before it (e.g. */{step})"
            for number in (first, last):
                if number is not None and not low <= int(number) <= high:
                    return f"{where}: {number} is out of range {low}-{high}"
            if first is not None and last is not None and int(first) > int(last):
                return f"{where}: range {first}-{last} runs backwards"
            if step is not None and not 1 <= int(step) <= high:
                return f"{where}: step {step} must be between 1 and {high}"
    return None


# --- calculator -----------------------------------------------------------------------------------
class CalculatorError(ValueError):
    """An expression the calculator refuses (not arithmetic, too big, division by zero)."""


_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_HINTS = {ast.Constant: "only numbers (no text, booleans or complex numbers)",
          ast.BitXor: "^ is not a power here: use **", ast.Tuple: "write numbers without thousands separators",
          ast.Name: "only numbers, no names", ast.Call: "no functions, only + - * / // % **",
          ast.Attribute: "only numbers, no attributes"}


def _check_size(value: int | float) -> int | float:
    if isinstance(value, complex):
        raise CalculatorError("the result is not a real number")
    too_big = abs(value) > 10 ** 100 if isinstance(value, int) else not abs(value) <= _CALC_MAX_MAGNITUDE
    if too_big:
        raise CalculatorError("the result is too large (limit 1e100)")
    return value


def _evaluate(node: ast.AST) -> int | float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):  # bools and complex are refused
        return _check_size(node.value)  # type: ignore[arg-type]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > _CALC_MAX_EXPONENT:
            raise CalculatorError(f"the exponent is too large (limit {_CALC_MAX_EXPONENT})")
        try:
            return _check_size(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError:
            raise CalculatorError("division by zero") from None
        except OverflowError:
            raise CalculatorError("the result is too large (limit 1e100)") from None
    kind = type(node.op) if isinstance(node, (ast.BinOp, ast.UnaryOp)) else type(node)
    hint = _HINTS.get(kind, "only numbers, parentheses and + - * / // % **")
    raise CalculatorError(f"unsupported {kind.__name__}: {hint}")


def calculate(expression: str) -> int | float:
    """The value of an arithmetic expression; ints stay ints, floats keep 12 significant digits.
    Raises CalculatorError for anything but numbers, + - * / // % ** and parentheses."""
    if len(expression) > _CALC_MAX_CHARS:
        raise CalculatorError(f"the expression is longer than {_CALC_MAX_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise CalculatorError(f"cannot parse {expression!r} as arithmetic") from None
    try:
        value = _evaluate(tree)
    except RecursionError:
        raise CalculatorError("the expression is nested too deeply") from None
    return value if isinstance(value, int) else float(f"{value:.12g}")


def _number_text(value: int | float) -> str:
    return str(value) if isinstance(value, int) or not value.is_integer() or abs(value) >= 1e16 else str(int(value))


# --- the scenario's world -------------------------------------------------------------------------
class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobSpec(_Spec):
    name: str = Field(min_length=1)
    cron: str
    action: str = ""

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, cron: str) -> str:
        problem = cron_problem(cron)
        if problem:
            raise ValueError(problem)
        return " ".join(cron.split())


class EmailSpec(_Spec):
    to: str = Field(min_length=1)
    subject: str = ""
    body: str = ""


class WebDoc(_Spec):
    url: str = Field(min_length=1)
    title: str = ""
    text: str


class DelegateRule(_Spec):
    agent: str = Field(pattern=r"\S", description="the sub-agent's name")
    when: list[str] = Field(default=[], description="words that must all appear in the task (case-insensitive)")
    reply: str


class WorldSpec(_Spec):
    """A scenario's initial world; every field is optional."""

    memory: dict[str, str] = {}
    memory_limit: int = Field(default=30, ge=1, le=1000)
    jobs: list[JobSpec] = []
    artifacts: dict[str, str] = {}
    outbox: list[EmailSpec] = []
    corpus: list[WebDoc] = []
    delegates: list[DelegateRule] = []
    fail: dict[str, str] = Field(default={}, description="tool name -> error text it answers every call with")

    @model_validator(mode="after")
    def _consistent(self) -> WorldSpec:
        if len(self.memory) > self.memory_limit:
            raise ValueError(f"memory has {len(self.memory)} facts but memory_limit is {self.memory_limit}")
        folded = [key.strip().casefold() for key in self.memory]
        if "" in folded or len(set(folded)) != len(folded):
            raise ValueError("memory keys must be non-empty and distinct (ignoring case)")
        long = [key for key, value in self.memory.items() if len(value) > MAX_VALUE_CHARS]
        if long:
            raise ValueError(f"memory value of {long[0]!r} is longer than {MAX_VALUE_CHARS} characters")
        urls = [doc.url for doc in self.corpus]
        if len(set(urls)) != len(urls):
            raise ValueError("corpus urls must be distinct")
        unknown = [name for name in self.fail if name not in TOOL_NAMES or name == "submit"]
        if unknown:
            raise ValueError(f"fail: {', '.join(unknown)} is not a tool (tools: {', '.join(TOOL_NAMES[:-1])})")
        return self


class _ToolError(Exception):
    """A call the service refuses; the model reads "error: <message>"."""


def _query_words(text: str) -> list[str]:
    words = [w for w in re.findall(r"[a-z0-9]+", text.casefold()) if len(w) >= 3 and w not in _STOPWORDS]
    return list(dict.fromkeys(words))


def _stem(word: str) -> str:
    return word[:-1] if len(word) >= 4 and word.endswith("s") and not word.endswith("ss") else word


def _flat(text: str) -> str:
    return " ".join(text.split())


class World:
    """The mock services of one episode. ``call`` serves one tool call; ``evidence`` is the end state."""

    def __init__(self, spec: WorldSpec):
        self.spec = spec
        self.schemas: list[dict[str, Any]] = WORLD_TOOLS
        self._memory: dict[str, tuple[str, str]] = {
            key.strip().casefold(): (key.strip(), value) for key, value in spec.memory.items()}
        self._jobs: list[dict[str, Any]] = [
            {"id": f"job-{n}", "name": job.name, "cron": job.cron, "action": job.action, "active": True}
            for n, job in enumerate(spec.jobs, start=1)]
        self._artifacts: dict[str, str] = dict(spec.artifacts)
        self._outbox: list[dict[str, Any]] = [{"id": f"m-{n}", **mail.model_dump()}
                                              for n, mail in enumerate(spec.outbox, start=1)]
        self._log: list[dict[str, Any]] = []

    def call(self, name: str, arguments: dict[str, Any]) -> tuple[str, Any]:
        """Serve one tool call: (the text the model reads, a small JSON-able record of the result).
        A refused call's text starts with "error: " and leaves the state as it was."""
        args = {key: str(value) for key, value in arguments.items()}
        handler = getattr(self, f"_tool_{name}", None) if name in TOOL_NAMES and name != "submit" else None
        try:
            if handler is None:
                raise _ToolError(f"no tool named {name!r}")
            missing = [key for key in _REQUIRED[name] if key not in args]
            if missing:
                raise _ToolError(f"{name}: missing argument(s): {', '.join(missing)}")
            if name in self.spec.fail:
                raise _ToolError(self.spec.fail[name])
            text, record = handler(args)
            ok = True
        except _ToolError as exc:
            text, record, ok = f"error: {exc}", {"error": str(exc)}, False
        self._log.append({"tool": name, "arguments": dict(arguments), "ok": ok})
        return text, record

    def evidence(self, status: str | None, answer: str) -> WorldEvidence:
        """The end state as records. The calls are the world's own log of what it served: calls
        refused before reaching it (unknown tools, malformed arguments, the loop guard) are in the
        reply's tool calls, not here."""
        return WorldEvidence(
            memory=[{"key": key, "value": value} for key, value in self._memory.values()],
            jobs=[dict(job) for job in self._jobs],
            artifacts=[{"name": name, "content": content} for name, content in self._artifacts.items()],
            outbox=[dict(mail) for mail in self._outbox],
            calls=[dict(entry, arguments=dict(entry["arguments"])) for entry in self._log],
            status=status, answer=answer)

    # --- memory ---------------------------------------------------------------------------------
    def _fact(self, key: str) -> str:
        folded = key.strip().casefold()
        if folded not in self._memory:
            known = ", ".join(k for k, _ in self._memory.values()) or "none"
            raise _ToolError(f"no fact with key {key.strip()!r} (keys: {known})")
        return folded

    def _value(self, value: str) -> str:
        if len(value) > MAX_VALUE_CHARS:
            raise _ToolError(f"a value is at most {MAX_VALUE_CHARS} characters (got {len(value)})")
        return value

    def _tool_memory_save(self, args: dict[str, str]) -> tuple[str, Any]:
        key, folded = args["key"].strip(), args["key"].strip().casefold()
        if not key:
            raise _ToolError("the key is empty")
        if folded in self._memory:
            raise _ToolError(f"key {self._memory[folded][0]!r} already exists; use memory_replace to change it")
        value = self._value(args["value"])
        if len(self._memory) >= self.spec.memory_limit:
            raise _ToolError(f"memory is full ({self.spec.memory_limit} facts); delete or replace a fact first")
        self._memory[folded] = (key, value)
        return f"saved {key}", {"saved": key}

    def _tool_memory_replace(self, args: dict[str, str]) -> tuple[str, Any]:
        folded = self._fact(args["key"])
        key, old = self._memory[folded]
        self._memory[folded] = (key, self._value(args["value"]))
        return f"replaced {key} (was: {old})", {"replaced": key}

    def _tool_memory_delete(self, args: dict[str, str]) -> tuple[str, Any]:
        key, _ = self._memory.pop(self._fact(args["key"]))
        return f"deleted {key}", {"deleted": key}

    def _tool_memory_search(self, args: dict[str, str]) -> tuple[str, Any]:
        words = _query_words(args["query"])
        found = [(key, value) for key, value in self._memory.values()
                 if any(w in key.casefold() or w in value.casefold() for w in words)]
        if not found:
            return f"no facts match {args['query']!r}", {"keys": []}
        return "\n".join(f"{key}: {value}" for key, value in found), {"keys": [key for key, _ in found]}

    def _tool_memory_list(self, args: dict[str, str]) -> tuple[str, Any]:
        facts = list(self._memory.values())
        text = "\n".join(f"{key}: {value}" for key, value in facts) or "memory is empty"
        return text + f"\n({len(facts)} of {self.spec.memory_limit} facts)", {"keys": [key for key, _ in facts]}

    # --- scheduler ------------------------------------------------------------------------------
    def _tool_schedule_create(self, args: dict[str, str]) -> tuple[str, Any]:
        problem = cron_problem(args["cron"])
        if problem:
            raise _ToolError(problem)
        if not args["name"].strip():
            raise _ToolError("the job name is empty")
        job = {"id": f"job-{len(self._jobs) + 1}", "name": args["name"].strip(), "cron": " ".join(args["cron"].split()),
               "action": args["action"], "active": True}
        self._jobs.append(job)
        return f"created {job['id']}", {"id": job["id"]}

    def _tool_schedule_list(self, args: dict[str, str]) -> tuple[str, Any]:
        active = [job for job in self._jobs if job["active"]]
        text = "\n".join(f"{j['id']} | {j['name']} | {j['cron']} | {j['action']}" for j in active)
        return text or "no active jobs", {"ids": [job["id"] for job in active]}

    def _tool_schedule_cancel(self, args: dict[str, str]) -> tuple[str, Any]:
        job_id = args["job_id"].strip().casefold()
        job = next((j for j in self._jobs if j["id"] == job_id), None)
        if job is None:
            raise _ToolError(f"no job {args['job_id'].strip()!r} (schedule_list shows the active jobs)")
        if not job["active"]:
            raise _ToolError(f"{job['id']} is already cancelled")
        job["active"] = False
        return f"cancelled {job['id']} ({job['name']})", {"cancelled": job["id"]}

    # --- artifacts ------------------------------------------------------------------------------
    def _tool_artifact_write(self, args: dict[str, str]) -> tuple[str, Any]:
        name, content = args["name"].strip(), args["content"]
        if not name:
            raise _ToolError("the artifact name is empty")
        if len(content) > MAX_ARTIFACT_CHARS:
            raise _ToolError(f"an artifact is at most {MAX_ARTIFACT_CHARS} characters (got {len(content)})")
        self._artifacts[name] = content
        return f"wrote {len(content)} characters to {name}", {"name": name, "chars": len(content)}

    def _tool_artifact_read(self, args: dict[str, str]) -> tuple[str, Any]:
        name = args["name"].strip()
        if name not in self._artifacts:
            raise _ToolError(f"no artifact named {name!r} (artifacts: {', '.join(self._artifacts) or 'none'})")
        return self._artifacts[name], {"name": name}

    def _tool_artifact_list(self, args: dict[str, str]) -> tuple[str, Any]:
        return "\n".join(self._artifacts) or "no artifacts", {"names": list(self._artifacts)}

    # --- web ------------------------------------------------------------------------------------
    def _tool_web_search(self, args: dict[str, str]) -> tuple[str, Any]:
        stems = [_stem(w) for w in _query_words(args["query"])]
        ranked = []
        for index, doc in enumerate(self.spec.corpus):
            doc_words = set(re.findall(r"[a-z0-9]+", f"{doc.title} {doc.text}".casefold()))
            hits = sum(any(word.startswith(stem) for word in doc_words) for stem in set(stems))
            if hits:
                ranked.append((-hits, index, doc))
        top = [doc for _, _, doc in sorted(ranked, key=lambda item: item[:2])[:SEARCH_RESULTS]]
        if not top:
            return f"no results for {args['query']}", {"urls": []}
        lines = [f"{doc.url} | {doc.title} | {_flat(doc.text)[:SNIPPET_CHARS]}" for doc in top]
        return "\n".join(lines), {"urls": [doc.url for doc in top]}

    def _tool_web_fetch(self, args: dict[str, str]) -> tuple[str, Any]:
        url = args["url"].strip()
        doc = next((d for d in self.spec.corpus if d.url.rstrip("/") == url.rstrip("/")), None)
        if doc is None:
            raise _ToolError(f"404 not found: {url}")
        return (f"{doc.title}\n\n{doc.text}" if doc.title else doc.text), {"url": doc.url}

    # --- sub-agents, calculator, email ----------------------------------------------------------
    def _tool_delegate(self, args: dict[str, str]) -> tuple[str, Any]:
        agents = list(dict.fromkeys(rule.agent for rule in self.spec.delegates))
        agent = next((a for a in agents if a.casefold() == args["agent"].strip().casefold()), None)
        if agent is None:
            raise _ToolError(f"no sub-agent named {args['agent'].strip()}; available: {', '.join(agents) or 'none'}")
        task = args["task"].casefold()
        rule = next((r for r in self.spec.delegates
                     if r.agent == agent and all(word.casefold() in task for word in r.when)), None)
        if rule is None:
            return f"the sub-agent {agent} could not help with that task", {"agent": agent, "helped": False}
        return rule.reply, {"agent": agent, "helped": True}

    def _tool_calculator(self, args: dict[str, str]) -> tuple[str, Any]:
        try:
            value = calculate(args["expression"])
        except CalculatorError as exc:
            raise _ToolError(f"calculator: {exc}") from None
        return _number_text(value), {"value": value}

    def _tool_send_email(self, args: dict[str, str]) -> tuple[str, Any]:
        recipients = [r.strip() for r in args["to"].split(",") if r.strip()]
        bad = [r for r in recipients if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", r)]
        if not recipients or bad:
            raise _ToolError(f"not an email address: {bad[0] if bad else args['to']!r}")
        mail = {"id": f"m-{len(self._outbox) + 1}", "to": ", ".join(recipients), "subject": args["subject"],
                "body": args["body"]}
        self._outbox.append(mail)
        return f"sent message {mail['id']} to {mail['to']}", {"id": mail["id"]}
