"""Validates run manifests against docs/manifest.schema.json with the `jsonschema` package
(Draft 2020-12, formats checked), so the documented schema and what gatelake writes cannot
drift apart.

Usage: check_manifest.py SCHEMA.json MANIFEST.json...
Prints "ok <count>" or exits non-zero naming the manifest and every violation.
"""
import json
import sys

import jsonschema


def main():
    schema = json.load(open(sys.argv[1], encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    failed = False
    for path in sys.argv[2:]:
        manifest = json.load(open(path, encoding="utf-8"))
        for error in sorted(validator.iter_errors(manifest), key=lambda e: list(e.path)):
            failed = True
            where = "/".join(str(p) for p in error.path) or "(root)"
            print(f"{path}: {where}: {error.message}", file=sys.stderr)
    if failed:
        sys.exit(1)
    print(f"ok {len(sys.argv) - 2}")


if __name__ == "__main__":
    main()
