package kstreams.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.processor.PunctuationType;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.ProcessorSupplier;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.StoreBuilder;
import org.apache.kafka.streams.state.Stores;

/**
 * The four benchmark workloads as Processor API topologies: source -> processor -> sink.
 *
 * <p>The record-level logic is the one of {@code bench/compare/workloads.py} (the Python
 * systems use that module), so every system does the same work on the same input:
 *
 * <ul>
 *   <li>{@code passthrough}: forward every parsed value;
 *   <li>{@code filter-map}: keep {@code kind == "buy"}, forward {@code {id, user, cents = amount * 100}};
 *   <li>{@code count}: count per key in a persistent store, forward {@code {id, count}} per record;
 *   <li>{@code window}: sum {@code amount} per key in tumbling windows kept in a persistent store
 *       under the key {@code "%015d|key"} (window start), emitted and deleted by a stream-time
 *       punctuation once {@code start + size <= stream time}, as {@code {start, end, sum}}.
 * </ul>
 *
 * <p>Stores are RocksDB key-value stores with logging (the default) and caching enabled.
 */
final class Workloads {
    static final String SOURCE = "source";
    static final String PROCESSOR = "process";
    static final String SINK = "sink";
    static final String COUNT_STORE = "counts";
    static final String WINDOW_STORE = "windows";

    /** The line a runner prints once, when its first input record reaches a processor. */
    static final String FIRST_RECORD_MARK = "BENCH first_record_ms=";

    private static final AtomicBoolean FIRST_SEEN = new AtomicBoolean(false);

    private Workloads() {}

    /** Print the first-record mark once per process (a volatile read per record after that). */
    static void markFirstRecord() {
        if (!FIRST_SEEN.get() && FIRST_SEEN.compareAndSet(false, true)) {
            System.out.println(FIRST_RECORD_MARK + System.currentTimeMillis());
            System.out.flush();
        }
    }

    /** The topology of {@code workload} reading {@code input} and writing {@code output}. */
    static Topology build(String workload, String input, String output, long windowMs) {
        Serde<String> keys = Serdes.String();
        Serde<JsonNode> values = Json.serde();
        Topology topology = new Topology();
        topology.addSource(SOURCE, keys.deserializer(), values.deserializer(), input);
        switch (workload) {
            case "passthrough" -> topology.addProcessor(PROCESSOR, Passthrough::new, SOURCE);
            case "filter-map" -> topology.addProcessor(PROCESSOR, FilterMap::new, SOURCE);
            case "count" -> {
                topology.addProcessor(PROCESSOR, Count::new, SOURCE);
                topology.addStateStore(store(COUNT_STORE), PROCESSOR);
            }
            case "window" -> {
                ProcessorSupplier<String, JsonNode, String, JsonNode> supplier = () -> new WindowSum(windowMs);
                topology.addProcessor(PROCESSOR, supplier, SOURCE);
                topology.addStateStore(store(WINDOW_STORE), PROCESSOR);
            }
            default -> throw new IllegalArgumentException("unknown workload: " + workload);
        }
        topology.addSink(SINK, output, keys.serializer(), values.serializer(), PROCESSOR);
        return topology;
    }

    /** A persistent (RocksDB) key-value store of longs, logged and cached. */
    private static StoreBuilder<KeyValueStore<String, Long>> store(String name) {
        return Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(name), Serdes.String(), Serdes.Long())
                .withCachingEnabled();
    }

    /** {@code passthrough}: forward every record (its value was parsed by the source). */
    static final class Passthrough implements Processor<String, JsonNode, String, JsonNode> {
        private ProcessorContext<String, JsonNode> context;

        @Override
        public void init(ProcessorContext<String, JsonNode> context) {
            this.context = context;
        }

        @Override
        public void process(Record<String, JsonNode> record) {
            markFirstRecord();
            context.forward(record);
        }
    }

    /** {@code filter-map}: keep the "buy" records and forward a new, smaller value. */
    static final class FilterMap implements Processor<String, JsonNode, String, JsonNode> {
        private ProcessorContext<String, JsonNode> context;

        @Override
        public void init(ProcessorContext<String, JsonNode> context) {
            this.context = context;
        }

        @Override
        public void process(Record<String, JsonNode> record) {
            markFirstRecord();
            JsonNode value = record.value();
            if (!"buy".equals(value.path("kind").asText())) {
                return;
            }
            ObjectNode out = Json.object();
            out.put("id", value.get("id").asLong());
            out.put("user", value.get("user").asText());
            out.put("cents", value.get("amount").asLong() * 100);
            context.forward(record.withValue(out));
        }
    }

    /** {@code count}: count per key in a store and forward {@code {id, count}} for every record. */
    static final class Count implements Processor<String, JsonNode, String, JsonNode> {
        private ProcessorContext<String, JsonNode> context;
        private KeyValueStore<String, Long> counts;

        @Override
        public void init(ProcessorContext<String, JsonNode> context) {
            this.context = context;
            this.counts = context.getStateStore(COUNT_STORE);
        }

        @Override
        public void process(Record<String, JsonNode> record) {
            markFirstRecord();
            Long previous = counts.get(record.key());
            long n = (previous == null ? 0L : previous) + 1;
            counts.put(record.key(), n);
            ObjectNode out = Json.object();
            out.put("id", record.value().get("id").asLong());
            out.put("count", n);
            context.forward(record.withValue(out));
        }
    }

    /**
     * {@code window}: per-key sums in tumbling windows of {@code windowMs}, kept in a store and
     * emitted by a stream-time punctuation when they close ({@code start + size <= stream time}).
     */
    static final class WindowSum implements Processor<String, JsonNode, String, JsonNode> {
        private final long windowMs;
        private ProcessorContext<String, JsonNode> context;
        private KeyValueStore<String, Long> sums;
        /** Window start below which every window was emitted (a scan hint; 0 after a restart). */
        private long emittedBelow = 0L;

        WindowSum(long windowMs) {
            this.windowMs = windowMs;
        }

        @Override
        public void init(ProcessorContext<String, JsonNode> context) {
            this.context = context;
            this.sums = context.getStateStore(WINDOW_STORE);
            context.schedule(Duration.ofMillis(windowMs), PunctuationType.STREAM_TIME, this::emitClosed);
        }

        @Override
        public void process(Record<String, JsonNode> record) {
            markFirstRecord();
            long start = record.timestamp() - Math.floorMod(record.timestamp(), windowMs);
            String storeKey = storeKey(start, record.key());
            Long previous = sums.get(storeKey);
            sums.put(storeKey, (previous == null ? 0L : previous) + record.value().get("amount").asLong());
        }

        private void emitClosed(long streamTime) {
            long lastClosedStart = streamTime - Math.floorMod(streamTime, windowMs) - windowMs;
            if (lastClosedStart < emittedBelow) {
                return;
            }
            List<KeyValue<String, Long>> closed = new ArrayList<>();
            try (KeyValueIterator<String, Long> it =
                    sums.range(pad(emittedBelow), pad(lastClosedStart) + "~")) {
                while (it.hasNext()) {
                    closed.add(it.next());
                }
            }
            for (KeyValue<String, Long> entry : closed) {
                long start = Long.parseLong(entry.key.substring(0, 15));
                ObjectNode out = Json.object();
                out.put("start", start);
                out.put("end", start + windowMs);
                out.put("sum", entry.value);
                context.forward(new Record<>(entry.key.substring(16), (JsonNode) out, streamTime));
                sums.delete(entry.key);
            }
            emittedBelow = lastClosedStart + windowMs;
        }

        /** {@code "%015d|key"}: zero-padded so that the store's byte order is the window order. */
        static String storeKey(long start, String key) {
            return pad(start) + "|" + key;
        }

        static String pad(long start) {
            String digits = Long.toString(start);
            return "0".repeat(Math.max(0, 15 - digits.length())) + digits;
        }
    }
}
