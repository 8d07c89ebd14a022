#!/usr/bin/env bash
# The whole test suite: lint, unit tests, the Java conformance suite (Maven fetches Kafka Streams
# 4.4.0), and the integration tests on a real Apache Kafka 4.4.0 broker started by the suite itself.
set -euo pipefail
source "$(dirname "$0")/env.sh"
python -m ruff check kstreams bench tests
python -m pytest tests "$@"
