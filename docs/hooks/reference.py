"""MkDocs hook: the Reference pages, generated from the code at build time.

Listed under ``hooks:`` in ``mkdocs.yml``. In ``on_files`` it adds these pages (none of them is
a file in ``docs/``):

* ``reference/cli.md``            every ``leadscore`` command, from the typer app (click tree);
* ``reference/api.md``            every route of the scoring API, from its OpenAPI document;
* ``reference/openapi.json``      that OpenAPI document, as the app builds it;
* ``reference/data-contract.md``  the canonical tables, from ``leadscore.features.schema``;
* ``reference/features.md``       the feature spec, from ``leadscore.features.spec``;
* ``reference/configuration.md``  the packaged default config files, verbatim.

Everything is built from the packaged defaults: ``LEADSCORE_*`` variables are set aside while
the pages are generated, so a developer's own config directory or API keys never leak into the
site. No trained model, MLflow server or network is needed: the API app is built but never
started (its lifespan, which loads a model, does not run).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import os
import re
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.hooks.reference")

GENERATED_NOTE = (
    "!!! note \"Generated page\"\n"
    "    This page is generated from the code when the documentation is built "
    "(`docs/hooks/reference.py`); do not edit it by hand.\n"
)


# --------------------------------------------------------------------------------------------
# helpers


@contextlib.contextmanager
def packaged_defaults() -> Iterator[None]:
    """Set every ``LEADSCORE_*`` variable aside (config dir, API keys, model URI, ...)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("LEADSCORE_")}
    for key in saved:
        del os.environ[key]
    try:
        yield
    finally:
        for key in [k for k in os.environ if k.startswith("LEADSCORE_")]:
            del os.environ[key]
        os.environ.update(saved)


def cell(text: Any) -> str:
    """Text fit for one Markdown table cell: one line, pipes escaped."""
    value = " ".join(str(text).split())
    return value.replace("|", "\\|") if value else "&nbsp;"


def code(text: Any) -> str:
    """A code span that survives any backticks in the text."""
    value = str(text)
    fence = "``" if "`" in value else "`"
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def paragraphs(text: str | None) -> str:
    """A docstring or help text, dedented (click's ``\\b`` markers dropped)."""
    if not text:
        return ""
    lines = [line for line in inspect.cleandoc(text).splitlines() if line.strip() != "\b"]
    return "\n".join(lines).strip()


# --------------------------------------------------------------------------------------------
# CLI


def _display_type(param: Any, ctx: Any) -> str:
    shown = getattr(param, "display_type", None)
    if callable(shown):  # typer >= 0.29
        try:
            text = str(shown(ctx))
        except TypeError:
            text = str(shown())
    else:  # plain click
        text = str(getattr(getattr(param, "type", None), "name", "") or "")
    text = text.strip().strip("<>").strip()
    return text.removesuffix(" range")  # the range itself is shown with the help


def _type_cell(param: Any, ctx: Any) -> str:
    if getattr(param, "is_flag", False) or getattr(param, "is_bool_flag", False):
        return "flag"
    text = _display_type(param, ctx)
    if "|" in text:
        return "one of " + ", ".join(code(choice) for choice in text.split("|"))
    return code(text) if text else "&nbsp;"


def _default_cell(param: Any) -> str:
    if getattr(param, "required", False):
        return "**required**"
    default = param.default
    if callable(default) or default is None:
        return "&nbsp;"
    if isinstance(default, Enum):
        default = default.value
    if isinstance(default, bool):
        if getattr(param, "secondary_opts", None):
            return code(param.opts[0] if default else param.secondary_opts[0])
        return code(str(default).lower())
    if isinstance(default, (list, tuple)):
        return ", ".join(code(v) for v in default) if default else "&nbsp;"
    return code(default)


def _help_cell(param: Any, ctx: Any) -> str:
    """The option's help and the extra facts click appends (range, env var), without the
    default and `required` (they have their own column)."""
    base = paragraphs(getattr(param, "help", None) or "")
    extras: list[str] = []
    try:
        record = param.get_help_record(ctx)
    except Exception:  # a display detail: the help text alone is enough
        record = None
    if record:
        tail = record[1]
        if tail.startswith(base):
            tail = tail[len(base):].strip()
            if tail.startswith("[") and tail.endswith("]"):
                for part in tail[1:-1].split("; "):
                    part = part.strip()
                    if part and not part.startswith("default:") and part != "required":
                        extras.append(part)
    text = " ".join(base.split())
    if extras:
        text += " (" + "; ".join(extras) + ")"
    return cell(text)


def _names(param: Any, ctx: Any) -> str:
    if getattr(param, "param_type_name", "") == "argument":
        return code(param.name) + " (argument)"
    names = [*param.opts, *getattr(param, "secondary_opts", [])]
    return ", ".join(code(n) for n in names)


def _options_table(cmd: Any, ctx: Any) -> str:
    rows = []
    for param in cmd.get_params(ctx):
        if param.name == "help" or getattr(param, "hidden", False):
            continue
        rows.append(
            f"| {_names(param, ctx)} | {_type_cell(param, ctx)} | {_default_cell(param)} "
            f"| {_help_cell(param, ctx)} |"
        )
    if not rows:
        return "No options besides `--help`.\n"
    head = "| option | type | default | help |\n| --- | --- | --- | --- |\n"
    return head + "\n".join(rows) + "\n"


def _anchor(path: list[str]) -> str:
    return "cmd-" + "-".join(path[1:]) if len(path) > 1 else "cmd-leadscore"


def _children(cmd: Any, ctx: Any) -> list[tuple[str, Any]]:
    commands = getattr(cmd, "commands", None) or {}
    return [(name, sub) for name, sub in commands.items() if not getattr(sub, "hidden", False)]


def _command_section(cmd: Any, ctx: Any, path: list[str], out: list[str]) -> None:
    level = min(len(path) + 1, 4)
    title = " ".join(path)
    out.append(f"{'#' * level} {title} {{ #{_anchor(path)} }}\n")
    pieces = " ".join(cmd.collect_usage_pieces(ctx))
    out.append(f"```text\n{title} {pieces}\n```\n")
    text = paragraphs(cmd.help)
    if text:
        out.append(text + "\n")
    out.append(_options_table(cmd, ctx))
    children = _children(cmd, ctx)
    if children:
        out.append("| command | what it does |\n| --- | --- |")
        for name, sub in children:
            short = sub.get_short_help_str(limit=200) if hasattr(sub, "get_short_help_str") else ""
            out.append(f"| [{code(' '.join([*path, name]))}](#{_anchor([*path, name])}) "
                       f"| {cell(short)} |")  # fmt: skip
        out.append("")
    for name, sub in children:
        sub_ctx = sub.context_class(sub, info_name=name, parent=ctx)
        _command_section(sub, sub_ctx, [*path, name], out)


def cli_page() -> str:
    import typer.main

    from leadscore.cli import app

    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="leadscore")
    out = [
        "# CLI reference\n",
        GENERATED_NOTE,
        "Every command of the `leadscore` console script, nested groups included, with its "
        "options as the code declares them. `leadscore COMMAND --help` prints the same. "
        "`python -m leadscore` runs the same app without the installed entry point.\n",
        "Errors print one line each (`error: ...`) on standard error; `--debug` (or "
        "`LEADSCORE_DEBUG=1`) shows the traceback instead. The exit status is 1 when a "
        "command fails and 2 for a usage error (a bad option or argument).\n",
    ]
    _command_section(root, ctx, ["leadscore"], out)
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# API


def _route_scopes(app: Any) -> dict[tuple[str, str], str]:
    """(path, METHOD) -> the API-key scope its dependencies require, where it can be seen."""
    scopes: dict[tuple[str, str], str] = {}

    def walk(dependant: Any) -> str | None:
        for dep in getattr(dependant, "dependencies", []):
            call = getattr(dep, "call", None)
            if call is not None:
                with contextlib.suppress(TypeError, ValueError):
                    scope = inspect.getclosurevars(call).nonlocals.get("scope")
                    if isinstance(scope, str):
                        return scope
            found = walk(dep)
            if found:
                return found
        return None

    def routes(holder: Any) -> Iterator[Any]:
        # FastAPI keeps included routers either flattened or (newer versions) wrapped
        for route in getattr(holder, "routes", None) or []:
            if getattr(route, "dependant", None) is not None:
                yield route
            else:
                inner = getattr(route, "original_router", None) or getattr(route, "router", None)
                if inner is not None and inner is not holder:
                    yield from routes(inner)

    for route in routes(app):
        scope = walk(route.dependant)
        if scope:
            for method in getattr(route, "methods", ()):
                scopes[(route.path, method.upper())] = scope
    return scopes


def _route_anchor(path: str, method: str) -> str:
    return "route-" + method.lower() + re.sub(r"[^a-z0-9]+", "-", path.lower()).rstrip("-")


def _schema_anchor(name: str) -> str:
    return "schema-" + name.lower()


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _schema_type(schema: dict[str, Any]) -> str:
    """A schema as a short phrase: links for references, `or` for unions."""
    if not schema:
        return "any"
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return f"[{name}](#{_schema_anchor(name)})"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            parts = [_schema_type(s) for s in schema[key]]
            non_null = [p for p in parts if p != code("null")]
            text = " or ".join(dict.fromkeys(non_null)) or code("null")
            return text + (" (nullable)" if len(non_null) < len(parts) else "")
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _schema_type(schema["allOf"][0])
    if "const" in schema:
        return code(json.dumps(schema["const"]))
    if "enum" in schema:
        return "one of " + ", ".join(code(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        return "array of " + _schema_type(schema.get("items", {}))
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return "object of " + _schema_type(schema["additionalProperties"])
    if isinstance(kind, list):
        return " or ".join(code(k) for k in kind)
    text = code(kind or "any")
    if "format" in schema:
        text += f" ({schema['format']})"
    bounds = []
    for key, sign in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="),
                      ("exclusiveMaximum", "<"), ("maxItems", "items <=")):  # fmt: skip
        if key in schema:
            bounds.append(f"{sign} {schema[key]}")
    return text + (f" ({', '.join(bounds)})" if bounds else "")


def _properties_table(schema: dict[str, Any]) -> str:
    props = schema.get("properties") or {}
    if not props:
        extra = schema.get("additionalProperties")
        if extra is True or extra is None:
            return "A JSON object (no fixed fields in this document).\n"
        return f"A JSON object: {_schema_type(schema)}.\n"
    required = set(schema.get("required") or [])
    rows = ["| field | type | required | description |", "| --- | --- | --- | --- |"]
    for name, prop in props.items():
        description = prop.get("description", "")
        if "default" in prop and prop["default"] is not None:
            description = f"{description} Default: {code(json.dumps(prop['default']))}.".strip()
        needed = "yes" if name in required else "no"
        rows.append(f"| {code(name)} | {_schema_type(prop)} | {needed} | {cell(description)} |")
    extra = schema.get("additionalProperties")
    note = ""
    if extra is False:
        note = "\nOther fields are refused.\n"
    elif extra is True:
        note = "\nOther fields are accepted.\n"
    return "\n".join(rows) + "\n" + note


def _schema_sections(schemas: dict[str, Any], level: str = "###") -> list[str]:
    out = []
    for name in sorted(schemas):
        schema = schemas[name]
        out.append(f"{level} {name} {{ #{_schema_anchor(name)} }}\n")
        if schema.get("description"):
            out.append(paragraphs(schema["description"]) + "\n")
        out.append(_properties_table(schema))
    return out


def _operation(path: str, method: str, op: dict[str, Any], doc: dict[str, Any],
               scopes: dict[tuple[str, str], str]) -> list[str]:  # fmt: skip
    out = [f"## {method.upper()} {path} {{ #{_route_anchor(path, method)} }}\n"]
    if op.get("summary"):
        out.append(f"**{op['summary']}**\n")
    if op.get("description"):
        out.append(paragraphs(op["description"]) + "\n")
    facts = []
    if op.get("tags"):
        facts.append("tags: " + ", ".join(code(t) for t in op["tags"]))
    security = op.get("security")
    if security:
        schemes = doc.get("components", {}).get("securitySchemes", {})
        names = []
        for requirement in security:
            for scheme_name in requirement:
                scheme = schemes.get(scheme_name, {})
                names.append(f"{scheme.get('in', '')} {code(scheme.get('name', scheme_name))}")
        scope = scopes.get((path, method.upper()))
        text = "API key in the " + " or ".join(names).strip()
        text += f", scope {code(scope)}" if scope else " (scope not shown in the document)"
        facts.append("auth: " + text)
    else:
        facts.append("auth: none")
    out.append("\n".join(f"- {f}" for f in facts) + "\n")
    params = op.get("parameters") or []
    if params:
        out.append("**Parameters**\n")
        out.append("| name | in | type | required | default | description |\n"
                   "| --- | --- | --- | --- | --- | --- |")  # fmt: skip
        for p in params:
            schema = p.get("schema", {})
            default = code(json.dumps(schema["default"])) if "default" in schema else "&nbsp;"
            description = p.get("description") or schema.get("description", "")
            out.append(f"| {code(p['name'])} | {p.get('in', '')} | {_schema_type(schema)} "
                       f"| {'yes' if p.get('required') else 'no'} | {default} "
                       f"| {cell(description)} |")  # fmt: skip
        out.append("")
    body = op.get("requestBody")
    if body:
        out.append("**Request body**\n")
        content = body.get("content", {})
        for media, spec in content.items():
            line = f"{code(media)}: {_schema_type(spec.get('schema', {}))}"
            if body.get("description"):
                line += f". {body['description']}"
            out.append(line + "\n")
    responses = op.get("responses") or {}
    if responses:
        out.append("**Responses**\n")
        out.append("| status | description | body |\n| --- | --- | --- |")
        for status, response in responses.items():
            bodies = [
                f"{_schema_type(spec['schema'])}"
                for spec in (response.get("content") or {}).values()
                if spec.get("schema")
            ]
            out.append(f"| {status} | {cell(response.get('description', ''))} "
                       f"| {' '.join(bodies) or '&nbsp;'} |")  # fmt: skip
        out.append("")
    return out


def openapi_document() -> tuple[dict[str, Any], dict[tuple[str, str], str]]:
    from leadscore.serving.api.app import create_app
    from leadscore.serving.settings import Settings

    app = create_app(Settings())
    return app.openapi(), _route_scopes(app)


def api_page(doc: dict[str, Any], scopes: dict[tuple[str, str], str]) -> str:
    from leadscore.features.config import load_feature_config
    from leadscore.features.payload import payload_model

    info = doc.get("info", {})
    out = [
        "# API reference\n",
        GENERATED_NOTE,
        f"The scoring API (`leadscore serve`), OpenAPI {doc.get('openapi', '')}, "
        f"title {code(info.get('title', ''))}, version {code(info.get('version', ''))}. "
        "The full document is [openapi.json](openapi.json).\n",
        "!!! info \"Built without a model\"\n"
        "    This document is built from the app with no model loaded, so the request bodies "
        "are generic objects here. A running service completes its own document (`/docs`, "
        "`/openapi.json`) from the model it serves: the request schema from that model's data "
        "contract (custom fields included) and a complete example lead with the model's "
        "answer. The [lead body with the packaged config](#lead-body) is shown below.\n",
        paragraphs(info.get("description", "")) + "\n",
        "Guides: [the scoring API](../how-to/marketing-ops/scoring-api.md), "
        "[API keys](../how-to/marketing-ops/api-keys.md), "
        "[reading a score](../how-to/sales/reading-a-score.md).\n",
        "| route | summary | scope |\n| --- | --- | --- |",
    ]
    for path, methods in doc.get("paths", {}).items():
        for method, op in methods.items():
            anchor = _route_anchor(path, method)
            scope = scopes.get((path, method.upper()))
            auth = code(scope) if scope else ("key" if op.get("security") else "none")
            out.append(f"| [{code(method.upper() + ' ' + path)}](#{anchor}) "
                       f"| {cell(op.get('summary', ''))} | {auth} |")  # fmt: skip
    out.append("")
    for path, methods in doc.get("paths", {}).items():
        for method, op in methods.items():
            out.extend(_operation(path, method, op, doc, scopes))
    out.append("## Schemas\n")
    out.append("The response and request schemas of the document above.\n")
    out.extend(_schema_sections(doc.get("components", {}).get("schemas", {})))

    payload = payload_model(load_feature_config()).model_json_schema(
        ref_template="#/components/schemas/Body{model}"
    )
    defs = {f"Body{name}": schema for name, schema in payload.pop("$defs", {}).items()}
    out.append("## The lead body with the packaged config { #lead-body }\n")
    out.append(
        "What `POST /v1/score` (and each item of `/v1/score/batch`, the MLflow pyfunc and "
        "`leadscore criteria check --lead`) accepts for a model trained with the packaged "
        "`features.yaml`. A model trained with your own `features.yaml` accepts your custom "
        "fields too. Column meanings: [data contract](data-contract.md).\n"
    )
    out.extend(_schema_sections({"BodyLeadPayload": payload, **defs}))
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# data contract, features, configuration


def data_contract_page() -> str:
    from leadscore.features.config import load_feature_config
    from leadscore.features.schema import EVENT_TYPES, schemas

    tables = schemas(load_feature_config())
    out = [
        "# Data contract reference\n",
        GENERATED_NOTE,
        "The canonical tables every source becomes, with the packaged `features.yaml` (its band "
        "orders and custom fields included). What the contract means and how it is checked: "
        "[the data contract](../concepts/data-contract.md).\n",
        "- **kind**: `id` (the table's key), `ref` (an id that must exist in another table), "
        "`string`, `category`, `timestamp` (ISO-8601, normalised to UTC), `number` (finite), "
        "`count` (a whole number >= 0), `boolean`;\n"
        "- **required**: the column must be present in the source (an optional column that is "
        "missing is read as empty);\n"
        "- **nullable**: a row may leave the value empty (a key never);\n"
        "- **vocabulary**: the declared values, lowest first for ordered bands; a value outside "
        "it is kept, counted in a warning and scored as unseen.\n",
        f"Event types the features know: {', '.join(code(t) for t in EVENT_TYPES)} (others "
        "are kept and match no feature).\n",
    ]
    for name, table in tables.items():
        out.append(f"## {name}\n")
        out.append(f"Key: {code(table.key) if table.key else 'none'}.\n")
        out.append("| column | kind | required | nullable | references | vocabulary |\n"
                   "| --- | --- | --- | --- | --- | --- |")  # fmt: skip
        for col in table.columns:
            vocab = ", ".join(code(v) for v in col.vocabulary) if col.vocabulary else "&nbsp;"
            ref = code(col.ref) if col.ref else "&nbsp;"
            # the contract never accepts an empty id, whatever the column's nullable flag says
            nullable = col.nullable and col.kind != "id"
            out.append(f"| {code(col.name)} | {col.kind} | {'yes' if col.required else 'no'} "
                       f"| {'yes' if nullable else 'no'} | {ref} | {vocab} |")  # fmt: skip
        out.append("")
    return "\n".join(out)


def features_page() -> str:
    from leadscore.features.config import load_feature_config
    from leadscore.features.spec import build_spec, markdown_table

    spec = build_spec(load_feature_config())
    return "\n".join([
        "# Feature table\n",
        GENERATED_NOTE,
        f"The {len(spec)} features of the spec with the packaged `features.yaml` "
        "(`leadscore features list` prints the same table for your own config). "
        "**group**: `fit` (who they are), `engagement` (what they did), `sales` (what sales "
        "did). **how**: the column it reads, or the aggregate over events with the filter and "
        "window (`first_7d`: the first 7 days after creation; `last_7d`: the 7 days before "
        "as_of; `prev_7d`: the 7 days before those; otherwise every event up to as_of). "
        "**sentence**: the template a reason is written with. See "
        "[the feature spec](../concepts/feature-spec.md).\n",
        markdown_table(spec),
        "",
    ])  # fmt: skip


CONFIG_INTROS = {
    "features.yaml": (
        "Band orders and your own CRM fields: read by `leadscore features build`, by training "
        "(which stores the resolved spec with each model) and by the SQL criteria. See "
        "[the feature spec](../concepts/feature-spec.md)."
    ),
    "training.yaml": (
        "How `leadscore train` labels, splits, trains, calibrates and sets the MQL policy; "
        "every value is logged to MLflow. See [train a model](../how-to/data-scientist/train.md)."
    ),
    "sql_criteria.yaml": (
        "The written SQL definition marketing and sales sign: checked next to every score. See "
        "[SQL criteria](../concepts/sql-criteria.md)."
    ),
    "routing.yaml": (
        "Which events count as a hand-raise for the recommended action. See "
        "[the routing rule](../concepts/routing.md)."
    ),
    "titles.yaml": "How job titles map to a role and seniority when a CRM export has only titles.",
    "salesforce.yaml": "How a Salesforce export's objects and fields map to the data contract.",
    "hubspot.yaml": "How a HubSpot export's objects and properties map to the data contract.",
    "handoff.yaml": (
        "The reasons a rep can give for rejecting a handed-over lead, the criteria group each "
        "contradicts, and which leave a lead out of training. See "
        "[the handoff loop](../concepts/handoff-loop.md)."
    ),
    "sla.yaml": (
        "How fast a rep must first touch a handed-over lead, in business time: targets, "
        "business hours, holidays, reps in other time zones. See "
        "[the handoff loop](../concepts/handoff-loop.md#the-sla-in-business-time)."
    ),
    "next_steps.yaml": (
        "The steps a rep can take (a meeting, a demo, a pricing call) as the events they would "
        "leave, for the what-if. See [next steps](../concepts/next-steps.md)."
    ),
}


def configuration_page() -> str:
    from leadscore.features.configdir import CONFIG_ENV, CONFIG_FILES, packaged_config_dir

    directory = packaged_config_dir()
    out = [
        "# Configuration files\n",
        GENERATED_NOTE,
        "The default definitions ship inside the package (`leadscore.config`). They are "
        "read-only: to change them, write editable copies and point leadscore at them:\n",
        "```bash\n"
        "leadscore init my-config            # writes " + ", ".join(CONFIG_FILES) + "\n"
        f"export {CONFIG_ENV}=$PWD/my-config  # or: leadscore --config-dir my-config COMMAND\n"
        "```\n",
        "Commands that take `--config` or `--criteria` read that file instead. The scoring "
        "service reads `LEADSCORE_CRITERIA_FILE`, `LEADSCORE_ROUTING_FILE`, "
        "`LEADSCORE_SLA_FILE`, `LEADSCORE_HANDOFF_FILE` and `LEADSCORE_NEXT_STEPS_FILE`, else "
        "the config directory. A trained model carries its own copy of the feature config; "
        "serving never reads `features.yaml`.\n",
    ]
    for name in CONFIG_FILES:
        text = (Path(directory) / name).read_text(encoding="utf-8")
        out.append(f"## {name}\n")
        out.append(CONFIG_INTROS.get(name, "") + "\n")
        out.append(f'```yaml title="{name}"\n{text.rstrip()}\n```\n')
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# the hook


def _add(files: Files, config: MkDocsConfig, src_uri: str, content: str) -> None:
    existing = files.get_file_from_path(src_uri)
    if existing is not None:
        log.warning("docs/%s exists and is replaced by the generated page", src_uri)
        files.remove(existing)
    files.append(File.generated(config, src_uri, content=content))


def on_files(files: Files, config: MkDocsConfig) -> Files:
    with packaged_defaults():
        doc, scopes = openapi_document()
        pages = {
            "reference/cli.md": cli_page(),
            "reference/api.md": api_page(doc, scopes),
            "reference/openapi.json": json.dumps(doc, indent=2) + "\n",
            "reference/data-contract.md": data_contract_page(),
            "reference/features.md": features_page(),
            "reference/configuration.md": configuration_page(),
        }
    for src_uri, content in pages.items():
        _add(files, config, src_uri, content)
    return files
