"""The OpenAPI 3.1 description served at /openapi.json, with the record schema of the loaded bundle."""

from __future__ import annotations

from typing import Any

from ..manifest import Schema
from ..version import __version__


def _record_schema(schema: Schema) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for f in schema.fields:
        if f.kind == "numeric":
            p: dict[str, Any] = {"type": ["number", "null"] if f.allow_missing else "number"}
            if f.min is not None and f.max is not None:
                p["description"] = f"training range about {f.min:g}..{f.max:g}; values outside are flagged out_of_range"
        else:
            p = {
                "type": ["string", "null"] if f.allow_missing else "string",
                "description": "one of "
                + ", ".join(f.categories)
                + " (others: unseen_category under the lenient policy)",
            }
        props[f.name] = p
    required = [f.name for f in schema.fields if not f.allow_missing]
    return {"type": "object", "properties": props, "required": required}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def openapi(schema: Schema, *, auth: bool, max_records: int, max_body_bytes: int) -> dict[str, Any]:
    """The document; ``auth`` adds the bearer scheme to every route except /healthz and /readyz."""
    secured: list[dict[str, list[str]]] = [{"bearer": []}] if auth else []
    result = {
        "type": "object",
        "required": ["row", "status"],
        "properties": {
            "row": {"type": "integer", "description": "1-based position of the record in the request"},
            "status": {"enum": ["scored", "rejected"]},
            "score": {"type": "number", "description": "probability of the positive label"},
            "decision": {"type": "boolean", "description": "score >= the bundle's threshold"},
            "label": {"type": "string"},
            "flags": {"type": "array", "items": {"type": "string"}},
            "error_type": {"type": "string", "description": "the runtime's InputError subclass"},
            "field": {"type": ["string", "null"]},
            "error": {"type": "string"},
            "reasons": {
                "type": "array",
                "description": "/v1/explain only",
                "items": {
                    "type": "object",
                    "properties": {
                        "field": {"type": "string"},
                        "direction": {"enum": ["higher", "lower", "missing", "category"]},
                        "contribution": {"type": "number"},
                        "text": {"type": "string"},
                    },
                },
            },
            "reference_score": {"type": "number", "description": "/v1/explain only"},
        },
    }
    model = {
        "type": "object",
        "description": "the model that produced this response; id is the bundle's sha256",
        "properties": {
            "id": {"type": "string"},
            "variant": {"type": "string"},
            "engine": {"type": "string"},
            "generation": {"type": "integer"},
        },
    }
    score_body = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/Record"},
                        {"type": "array", "items": {"$ref": "#/components/schemas/Record"}, "maxItems": max_records},
                    ]
                }
            }
        },
    }
    limits = {
        "400": _error("malformed JSON, or neither an object nor an array"),
        "401": _error("missing or wrong bearer token"),
        "408": _error("the body did not arrive within the request timeout"),
        "413": _error(f"body over {max_body_bytes} bytes or more than {max_records} records"),
        "503": _error("workers and queue are full; retry after the Retry-After seconds"),
        "504": _error("the request exceeded the per-request timeout"),
    }

    def get(summary: str, ref: str | None = None, secure: bool = True) -> dict[str, Any]:
        op: dict[str, Any] = {"summary": summary, "security": secured if secure else []}
        content = {"application/json": {"schema": {"$ref": ref} if ref else {"type": "object"}}}
        op["responses"] = {"200": {"description": "ok", "content": content}}
        return {"get": op}

    return {
        "openapi": "3.1.0",
        "info": {"title": "edgefin-run serve", "version": __version__},
        "paths": {
            "/v1/score": {
                "post": {
                    "summary": "Score one record (an object) or many (an array): one result per record, in order",
                    "security": secured,
                    "requestBody": score_body,
                    "responses": {
                        "200": {
                            "description": "one result per record; bad records are rejected individually",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ScoreResponse"}}},
                        },
                        **limits,
                    },
                }
            },
            "/v1/explain": {
                "post": {
                    "summary": "Score and explain: each scored row gains reasons (fields that raised the risk score, "
                    "largest first, protected fields never) and reference_score",
                    "security": secured,
                    "parameters": [
                        {
                            "name": "max_reasons",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 32, "default": 4},
                        }
                    ],
                    "requestBody": score_body,
                    "responses": {
                        "200": {
                            "description": "one result per record, with reasons",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ScoreResponse"}}},
                        },
                        "409": _error("the bundle has no explain section"),
                        **limits,
                    },
                }
            },
            "/v1/drift": get("Drift counts of the serving model (mergeable) and their PSI report"),
            "/v1/admin/reload": {
                "post": {
                    "summary": "Verify the bundle file again and swap to it; the old model serves if it fails",
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": {"description": "swapped"},
                        "403": _error("the service was started without --token-file"),
                        "422": _error("the new bundle failed verification; the previous model keeps serving"),
                    },
                }
            },
            "/v1/info": get("The bundle's manifest summary and the serving model"),
            "/healthz": get("The process is up", secure=False),
            "/readyz": get("A verified, self-tested model is serving (503 while draining)", secure=False),
            "/metrics": {"get": {"summary": "Prometheus text format", "security": secured}},
            "/openapi.json": get("This document"),
        },
        "components": {
            "schemas": {
                "Record": _record_schema(schema),
                "Result": result,
                "Model": model,
                "ScoreResponse": {
                    "type": "object",
                    "properties": {
                        "model": {"$ref": "#/components/schemas/Model"},
                        "results": {"type": "array", "items": {"$ref": "#/components/schemas/Result"}},
                    },
                },
                "Error": {
                    "type": "object",
                    "properties": {
                        "ok": {"const": False},
                        "status": {"type": "integer"},
                        "error_type": {"type": "string"},
                        "error": {"type": "string"},
                    },
                },
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
