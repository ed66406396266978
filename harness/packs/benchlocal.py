"""Importing benchlocal-cli pack files unmodified, and sending their requests as upstream did.

A BenchLocal file is JSON lines: a ``{"__meta__": true, ...}`` line, then scenarios. Every field
is either honoured or kept verbatim and listed in ``PackMeta.ignored_fields`` (copied into the
run's PackResult); fields upstream does not define are kept too, with one warning line.
Scenarios with upstream ``kind`` asserts are judged by ``verifiers.benchlocal_asserts`` with
benchlocal-cli's pass rules; scenarios in our own verifier shapes keep our verifiers. ``_stub``
scenarios (upstream's execution-backed packs) load, are never sent, and stay out of the scores.
Request layering follows upstream: pack sampling_defaults, scenario sampling_overrides, the
thinking sampler when thinking is on, then explicit CLI sampling.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from harness.errors import PackError, describe_validation_error
from harness.packs.schema import NOT_SCORED, Pack, PackMeta, Sampling, SamplingSource, Scenario
from harness.packs.verifiers import VERIFIERS, benchlocal_asserts

# upstream meta field -> ours (honoured as is)
_META_FIELDS = {"pack_id": "id", "version": "version", "title": "title", "name": "title", "license": "license",
                "description": "description", "default_max_seconds": "default_max_seconds",
                "timeout_reference_tps": "timeout_reference_tps", "timeout_baseline_tokens": "baseline_max_tokens",
                "verifier_module": "verifier_module"}
_META_HONOURED = set(_META_FIELDS) | {"__meta__", "sampling_defaults", "default_thinking", "thinking_sampler",
                                      "timeout_per_case_default", "requires_dataset_access", "dataset_access_note",
                                      "scenario_count"}
# defined upstream, kept, but nothing here acts on them
_META_KNOWN_IGNORED = {"upstream_repo", "upstream_commit", "license_text_path", "ported_at", "porter", "suite",
                       "subset", "safety_policy", "timeout_ceiling_s", "supports_sandboxed_only"}
_SCENARIO_HONOURED = {"id", "description", "messages", "tools", "verifier", "sampling_overrides",
                      "max_seconds_override", "expected", "declares_top_level_shape", "benchmark_reference_date",
                      "benchmark_reference_day"}
_SCENARIO_KNOWN_IGNORED = {"tags", "upstream_scenario_id", "upstream_title", "success_case", "failure_case",
                           "supports_sandboxed_only", "raw_scenario", "raw_problem", "expected_answer",
                           "upstream_evaluate_summary", "no_best_of_n", "max_turns", "pack_id"}
_SAMPLER_FIELDS = set(Sampling.model_fields)
# benchlocal-cli's sampler for thinking turns when a pack names none
UPSTREAM_THINKING_SAMPLER = Sampling(temperature=0.6, top_p=0.95, top_k=20, min_p=0.0)
_TOOL_CHOICES = ("auto", "none", "required")
EQUIVALENTS = {"bugfind-15": "our bugfind-15 pack (--pack bugfind-15)", "cli-40": "our cli-40 pack (--pack cli-40)",
               "hermesagent-20": "our agent-20 pack (--pack agent-20)",
               "humaneval-plus-30": "our sandboxed HumanEval+ run (python -m harness evalplus PROFILE)"}


def _fail(place: str, field: str, why: str) -> PackError:
    return PackError(f"{place}: field {field}: {why}")


def _validated(model: type[BaseModel], data: Any, place: str, prefix: str = "") -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PackError(f"{place}: field {prefix}{describe_validation_error(exc, '(root)')}") from None


def _split_sampling(raw: Any, place: str, field: str) -> tuple[Sampling, dict[str, Any]]:
    """Sampler fields (validated) and the other request fields (tool_choice, chat_template_kwargs, ...)."""
    if raw is None:
        return Sampling(), {}
    if not isinstance(raw, dict):
        raise _fail(place, field, "must be an object")
    sampler = _validated(Sampling, {k: v for k, v in raw.items() if k in _SAMPLER_FIELDS}, place, f"{field}.")
    extra = {k: v for k, v in raw.items() if k not in _SAMPLER_FIELDS}
    kwargs = extra.get("chat_template_kwargs")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise _fail(place, f"{field}.chat_template_kwargs", "must be an object")
    choice = extra.get("tool_choice")
    if choice is not None and choice not in _TOOL_CHOICES and not (
            isinstance(choice, dict) and isinstance((choice.get("function") or {}).get("name"), str)):
        raise _fail(place, f"{field}.tool_choice", f"must be one of {', '.join(_TOOL_CHOICES)} or "
                                                   '{"type": "function", "function": {"name": ...}}')
    return sampler, extra


def _thinking_default(raw: Any, place: str) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("on", "off"):
        return raw.strip().lower() == "on"
    raise _fail(place, "default_thinking", f'must be "on" or "off", got {raw!r}')


def import_meta(raw: dict[str, Any], place: str) -> PackMeta:
    """Our PackMeta from an upstream ``__meta__`` line (known fields honoured, the rest kept)."""
    data = {ours: raw[theirs] for theirs, ours in _META_FIELDS.items() if theirs in raw}
    sampler, request = _split_sampling(raw.get("sampling_defaults"), place, "sampling_defaults")
    data["sampling_defaults"] = sampler.model_copy(update={"max_tokens": sampler.max_tokens or 512})
    data["request_defaults"] = request
    if "default_thinking" in raw:
        data["default_thinking"] = _thinking_default(raw["default_thinking"], place)
    if raw.get("thinking_sampler") is not None:
        data["thinking_sampling"] = _validated(Sampling, raw["thinking_sampler"], place, "thinking_sampler.")
    if raw.get("timeout_per_case_default") is not None:  # upstream: the larger local-model budget wins
        data["default_max_seconds"] = raw["timeout_per_case_default"]
    if "baseline_max_tokens" not in data and sampler.max_tokens:  # upstream: the clock was set for this length
        data["baseline_max_tokens"] = sampler.max_tokens
    if raw.get("requires_dataset_access"):
        data["skip_reason"] = raw.get("dataset_access_note") or "the dataset needs access the pack file lacks"
    data["extras"] = {k: v for k, v in raw.items() if k not in _META_HONOURED}
    data["ignored_fields"] = sorted(data["extras"])
    data["format"] = "benchlocal"
    return _validated(PackMeta, data, place)


def _with_reference_date(messages: list[dict[str, Any]], row: dict[str, Any]) -> list[dict[str, Any]]:
    """Upstream adds the scenario's reference date to the system message; the prompt must match."""
    date, day = row.get("benchmark_reference_date"), row.get("benchmark_reference_day")
    if not date and not day:
        return messages
    line = (f"Benchmark reference date: {date} ({day})." if date and day else
            f"Benchmark reference date: {date}." if date else f"Benchmark reference day: {day}.")
    out = [dict(m) for m in messages]
    for message in out:
        if message.get("role") == "system":
            text = str(message.get("content") or "")
            if line not in text:
                message["content"] = f"{text.rstrip()}\n\n{line}" if text else line
            return out
    return [{"role": "system", "content": line}, *out]


def _is_upstream_verifier(verifier: dict[str, Any]) -> bool:
    """Upstream shape: {type, asserts} only, every assert a ``kind`` (our shapes use other fields)."""
    asserts = verifier.get("asserts", [])
    return verifier.get("type") == "_stub" or verifier.get("type") not in VERIFIERS or (
        set(verifier) <= {"type", "asserts"} and isinstance(asserts, list)
        and all(isinstance(a, dict) and "kind" in a for a in asserts))


def import_scenario(row: dict[str, Any], meta: PackMeta, place: str,
                    own_fields: set[str]) -> tuple[Scenario, list[str]]:
    """One scenario line; also the fields it carries that upstream does not define."""
    verifier = row.get("verifier")
    if not isinstance(verifier, dict):
        raise _fail(place, "verifier", "required: an object {type, asserts}")
    verifier = {**verifier}
    verifier.setdefault("type", meta.verifier_module)
    if not _is_upstream_verifier(verifier):  # a pack written in our verifier shapes
        extras = {k: v for k, v in row.items() if k not in own_fields}
        data = {k: v for k, v in row.items() if k in own_fields} | {"extras": extras}
        return _validated(Scenario, data, place), []
    upstream = verifier.pop("type")
    if upstream not in benchlocal_asserts.KINDS:
        raise _fail(place, "verifier.type", f"unknown BenchLocal verifier {upstream!r} "
                                            f"(known: {', '.join(benchlocal_asserts.KINDS)})")
    asserts = verifier.pop("asserts", [])
    if not isinstance(asserts, list) or not all(isinstance(a, dict) for a in asserts):
        raise _fail(place, "verifier.asserts", "must be a list of objects")
    for problem in benchlocal_asserts.problems(upstream, asserts):
        raise _fail(place, f"verifier.{problem.split(':', 1)[0]}", problem.split(": ", 1)[1])
    unknown = [f"verifier.{k}" for k in verifier] + benchlocal_asserts.unknown_keys(upstream, asserts)
    spec = {"type": "benchlocal", "upstream": upstream, "asserts": asserts}
    if "declares_top_level_shape" in row:
        spec["declares_top_level_shape"] = row["declares_top_level_shape"]
    sampler, request = _split_sampling(row.get("sampling_overrides"), place, "sampling_overrides")
    data = {"id": row.get("id"), "description": row.get("description") or "", "messages": row.get("messages"),
            "tools": row.get("tools"), "verifier": spec, "max_seconds_override": row.get("max_seconds_override"),
            "expected": row.get("expected"), "sampling_overrides": sampler if row.get("sampling_overrides") else None,
            "request_overrides": request, "max_turns": 1,  # upstream judges the first reply, tool calls and all
            "extras": {k: v for k, v in row.items() if k not in _SCENARIO_HONOURED}}
    if isinstance(data["messages"], list):
        data["messages"] = _with_reference_date(data["messages"], row)
    scenario = _validated(Scenario, data, place)
    _validated(benchlocal_asserts.Spec, spec, place, "verifier.")
    unknown += [k for k in row if k not in _SCENARIO_HONOURED | _SCENARIO_KNOWN_IGNORED]
    return scenario, unknown


def import_pack(path: Path, rows: list[tuple[int, dict[str, Any]]], own_fields: set[str]) -> Pack:
    """A whole BenchLocal file (rows as read by the loader: line number, object)."""
    if not rows or rows[0][1].get("__meta__") is not True:
        raise PackError(f"{path}:1: field __meta__: first line must be a "
                        '{"__meta__": true, "pack_id": ...} object')
    number, raw_meta = rows[0]
    meta = import_meta(raw_meta, f"{path}:{number}")
    warnings: list[str] = []
    unknown_meta = [k for k in meta.extras if k not in _META_KNOWN_IGNORED and not k.startswith("_")]
    scenarios: list[Scenario] = []
    unknown_rows: dict[str, list[int]] = {}
    seen: dict[str, int] = {}
    renamed: list[str] = []
    for line, row in rows[1:]:
        scenario, unknown = import_scenario(row, meta, f"{path}:{line}", own_fields)
        for field in unknown:
            unknown_rows.setdefault(field, []).append(line)
        if scenario.id in seen:  # upstream files repeat ids (gsm-symbolic-30): keep both, tell them apart
            seen[scenario.id] += 1
            new_id = f"{scenario.id}#{seen[scenario.id]}"
            renamed.append(f"{scenario.id} on line {line} -> {new_id}")
            scenario = scenario.model_copy(update={"id": new_id})
        seen.setdefault(scenario.id, 1)
        scenarios.append(scenario)
    ignored = set(meta.ignored_fields) | {f"scenarios[].{k}" for s in scenarios for k in s.extras}
    meta = meta.model_copy(update={"ignored_fields": sorted(ignored)})
    if unknown_meta or unknown_rows:
        listed = [f"{k} (line {number})" for k in unknown_meta] + [
            f"{k} (line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines[:3]))}"
            f"{', ...' if len(lines) > 3 else ''})" for k, lines in unknown_rows.items()]
        warnings.append(f"{path}: fields BenchLocal does not define, kept and not used: {'; '.join(listed)}")
    if renamed:
        more = f"; ... ({len(renamed)} in all)" if len(renamed) > 3 else ""
        warnings.append(f"{path}: duplicate scenario ids renamed: {'; '.join(renamed[:3])}{more}")
    stubs = [s for s in scenarios if is_stub(s)]
    if stubs:
        warnings.append(f"{path}: {len(stubs)} _stub scenario(s) will be reported as {NOT_SCORED} and not scored; "
                        f"{equivalent_hint(meta.id)}")
    if meta.skip_reason:
        warnings.append(f"{path}: nothing to run: {meta.skip_reason}")
    declared = raw_meta.get("scenario_count")
    if isinstance(declared, int) and declared != len(scenarios):
        warnings.append(f"{path}: scenario_count says {declared} but the file has {len(scenarios)} scenario(s)")
    if not scenarios and not meta.skip_reason:
        raise PackError(f"{path}: no scenarios")
    return Pack(meta=meta, scenarios=scenarios, source=str(path), warnings=warnings)


def equivalent_hint(pack_id: str) -> str:
    """Which of our packs runs what an upstream execution-backed pack needs."""
    where = EQUIVALENTS.get(pack_id)
    return f"for a scored run use {where}" if where else "no equivalent pack here yet"


def is_stub(scenario: Scenario) -> bool:
    return scenario.verifier.type == "benchlocal" and getattr(scenario.verifier, "upstream", None) == "_stub"


def stub_detail(pack_id: str, scenario: Scenario) -> str:
    reason = next((a.get("reason") for a in scenario.verifier.asserts if a.get("reason")), "")
    return (f"BenchLocal _stub scenario{f' ({reason})' if reason else ''}: not run and not scored; "
            f"{equivalent_hint(pack_id)}")


def request_body(payload: dict[str, Any], pack: Pack, scenario: Scenario, *, thinking: bool,
                 sampling_source: SamplingSource) -> dict[str, Any]:
    """The runner's payload with a BenchLocal pack's request fields layered on as upstream does;
    other packs' payloads are returned unchanged."""
    if pack.meta.format != "benchlocal":
        return payload
    body = dict(payload)
    runner_kwargs = body.pop("chat_template_kwargs", None)  # our thinking control, if the server takes one
    request = {**pack.meta.request_defaults, **scenario.request_overrides}
    kwargs = {k: v for k, v in (pack.meta.request_defaults.get("chat_template_kwargs") or {}).items()
              if k != "enable_thinking"} | (runner_kwargs or {})
    if "chat_template_kwargs" in scenario.request_overrides:  # upstream: a scenario's kwargs replace the lot
        kwargs = dict(scenario.request_overrides["chat_template_kwargs"])
    request.pop("chat_template_kwargs", None)
    thinking = bool(kwargs.get("enable_thinking", thinking))
    if sampling_source != "server":
        explicit = {k: body[k] for k in _SAMPLER_FIELDS - {"max_tokens"} if k in body}
        layers = [pack.meta.sampling_defaults, scenario.sampling_overrides or Sampling()]
        if thinking:
            layers.append(pack.meta.thinking_sampling or UPSTREAM_THINKING_SAMPLER)
        for key in _SAMPLER_FIELDS - {"max_tokens"}:
            body.pop(key, None)
        for layer in layers:
            body.update(layer.model_dump(exclude_none=True, exclude={"max_tokens"}))
        if sampling_source == "explicit":
            body.update(explicit)
    body.update({k: v for k, v in request.items() if k not in body or k in ("tool_choice",)})
    if kwargs or runner_kwargs is not None:
        body["chat_template_kwargs"] = kwargs
    return body
