"""Throughput benchmarks of kstreams (run with ``python -m bench ...``)."""
