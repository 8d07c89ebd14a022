"""Kafka->Kafka comparison of kstreams, Java Kafka Streams and quixstreams on a real broker.

Run it with ``python -m bench compare`` (see ``bench/README.md``). Modules:

* :mod:`~bench.compare.workloads`: the record logic of the four workloads (stdlib only, shared
  by every Python runner; ``bench/java`` mirrors it);
* :mod:`~bench.compare.dataset`: the seeded input and the outputs it implies;
* :mod:`~bench.compare.verify`: the output check that decides whether a run counts;
* :mod:`~bench.compare.systems`: the systems and their command lines;
* :mod:`~bench.compare.kstreams_runner`, :mod:`~bench.compare.quix_runner`: the Python runners;
* :mod:`~bench.compare.harness`: one measured run; :mod:`~bench.compare.kafka_io`: topics,
  loading, the output observer;
* :mod:`~bench.compare.report`, :mod:`~bench.compare.chart`, :mod:`~bench.compare.cli`.

This package must stay importable without kstreams and without confluent-kafka at import time:
the quixstreams runner imports it from quixstreams' own venv.
"""
