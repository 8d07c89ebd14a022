#!/usr/bin/env bash
# The main job: a demo topology (word count with a store and a punctuation) plus a throughput report.
set -euo pipefail
source "$(dirname "$0")/env.sh"
python -m kstreams.demo "$@"
