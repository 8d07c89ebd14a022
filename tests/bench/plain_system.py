"""A minimal consume-transform-produce "system" for the harness tests, with deliberate faults.

It speaks the runner interface of ``bench/compare`` (same options, the ``BENCH`` marks, stops on
SIGTERM) with plain confluent-kafka clients: ``passthrough`` and ``count`` (an in-memory dict),
under ``at_least_once`` (offsets committed as it goes) or ``exactly_once_v2`` (one transaction
per consumed batch). ``--fault`` breaks it on purpose:

* ``drop``: every 10th record is not written;
* ``duplicate``: every 10th record is written twice;
* ``miscount``: every 10th count is one too high.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from typing import Any

from confluent_kafka import Consumer, Producer

from bench.compare import workloads


def main() -> int:
    p = argparse.ArgumentParser()
    for name in ("--bootstrap", "--workload", "--guarantee", "--app-id", "--input", "--output"):
        p.add_argument(name, required=True)
    for name in ("--threads", "--state-dir", "--commit-interval-ms", "--window-ms"):
        p.add_argument(name)
    p.add_argument("--config", action="append", default=[])
    p.add_argument("--fault", choices=["none", "drop", "duplicate", "miscount"], default="none")
    args = p.parse_args()
    eos = args.guarantee == "exactly_once_v2"
    print(workloads.SETTINGS_MARK + json.dumps({"system": "plain", "fault": args.fault, "eos": eos}), flush=True)
    stopping = False

    def on_term(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": args.app_id,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "isolation.level": "read_committed", "fetch.queue.backoff.ms": 10})
    producer_config = {"bootstrap.servers": args.bootstrap, "linger.ms": 5}
    if eos:
        producer_config["transactional.id"] = args.app_id
    producer = Producer(producer_config)
    if eos:
        producer.init_transactions(30)
    consumer.subscribe([args.input])
    mark = workloads.FirstRecordMark()
    counts: dict[bytes, int] = {}
    seen = 0
    while not stopping:
        batch = [m for m in consumer.consume(500, 0.1) if m.error() is None]
        if not batch:
            continue
        mark.mark()
        if eos:
            producer.begin_transaction()
        for message in batch:
            seen += 1
            key, value = message.key(), message.value()
            faulty = seen % 10 == 0
            if args.workload == "count":
                counts[key] = counts.get(key, 0) + 1
                n = counts[key] + (1 if faulty and args.fault == "miscount" else 0)
                value = json.dumps(workloads.count_value(json.loads(value), n)).encode()
            if faulty and args.fault == "drop":
                continue
            producer.produce(args.output, value, key)
            if faulty and args.fault == "duplicate":
                producer.produce(args.output, value, key)
        if eos:
            producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                                 consumer.consumer_group_metadata(), 30)
            producer.commit_transaction(30)
        else:
            producer.flush(30)
            consumer.commit(asynchronous=False)
    producer.flush(10)
    consumer.close()
    time.sleep(0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
