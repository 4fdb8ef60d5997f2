"""`omnidesk schema`: the JSON Schema of queue_config.yaml, for editors."""

from __future__ import annotations

import argparse
import json

from omnidesk.config import QueueConfigFile


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("schema", help="print the JSON Schema of queue_config.yaml")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    schema = QueueConfigFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Omnidesk queue_config.yaml"
    print(json.dumps(schema, ensure_ascii=False, indent=2))
    return 0
