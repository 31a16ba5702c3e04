#!/usr/bin/python3
"""Parses a Prometheus text exposition with the reference client's parser
(python3-prometheus-client) and prints one 'name{labels} value' line per
sample, so tests compare parsed values instead of grepping text.  Exits 1
if the text does not parse."""
import sys

from prometheus_client.parser import text_string_to_metric_families

text = open(sys.argv[1]).read() if len(sys.argv) > 1 else sys.stdin.read()
try:
    for family in text_string_to_metric_families(text):
        if family.type not in ("counter", "gauge"):
            raise ValueError(f"{family.name}: unexpected type {family.type}")
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            print(f"{sample.name}{{{labels}}} {int(sample.value)}")
except Exception as error:  # the parser raises ValueError and others
    print(f"invalid exposition: {error}", file=sys.stderr)
    sys.exit(1)
