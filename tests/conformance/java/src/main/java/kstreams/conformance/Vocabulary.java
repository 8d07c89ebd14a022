package kstreams.conformance;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.apache.kafka.streams.processor.Cancellable;
import org.apache.kafka.streams.processor.PunctuationType;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.ProcessorSupplier;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.processor.api.RecordMetadata;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * The processor vocabulary of the conformance scenarios: one small processor per {@code kind}.
 *
 * <p>Every processor here has a twin with the same behaviour in
 * {@code tests/conformance/vocabulary.py}; keys and values are strings so that both sides
 * produce byte-identical output. See {@code tests/conformance/README.md} for the parameters.
 */
final class Vocabulary {

    private Vocabulary() {
    }

    /** Returns a supplier of new processors of the given kind, configured by {@code params}. */
    static ProcessorSupplier<String, String, String, String> supplier(
            final String name, final String kind, final JsonNode params) {
        switch (kind) {
            case "forward":
                return ForwardProcessor::new;
            case "map_value": {
                final String prefix = params.path("prefix").asText("");
                return () -> new MapValueProcessor(prefix);
            }
            case "filter": {
                final String exclude = params.path("exclude").asText();
                return () -> new FilterProcessor(exclude);
            }
            case "route": {
                final boolean byKey = "key".equals(params.path("by").asText("value"));
                return () -> new RouteProcessor(byKey);
            }
            case "count": {
                final String store = params.path("store").asText();
                return () -> new CountProcessor(store);
            }
            case "metadata":
                return MetadataProcessor::new;
            case "punctuate": {
                final List<ScheduleSpec> specs = new ArrayList<>();
                for (final JsonNode s : params.path("schedules")) {
                    specs.add(ScheduleSpec.fromJson(s));
                }
                final boolean forwardInput = params.path("forward_input").asBoolean(true);
                return () -> new PunctuateProcessor(name, specs, forwardInput);
            }
            default:
                throw new IllegalArgumentException("unknown processor kind: " + kind);
        }
    }

    /** Base class keeping the context. */
    abstract static class Base implements Processor<String, String, String, String> {
        protected ProcessorContext<String, String> context;

        @Override
        public void init(final ProcessorContext<String, String> context) {
            this.context = context;
        }
    }

    /** {@code forward}: forwards every record unchanged to all children. */
    static final class ForwardProcessor extends Base {
        @Override
        public void process(final Record<String, String> record) {
            context.forward(record);
        }
    }

    /** {@code map_value}: forwards {@code record.withValue(prefix + value)}. */
    static final class MapValueProcessor extends Base {
        private final String prefix;

        MapValueProcessor(final String prefix) {
            this.prefix = prefix;
        }

        @Override
        public void process(final Record<String, String> record) {
            context.forward(record.withValue(prefix + record.value()));
        }
    }

    /** {@code filter}: forwards a record only if its value does not contain {@code exclude}. */
    static final class FilterProcessor extends Base {
        private final String exclude;

        FilterProcessor(final String exclude) {
            this.exclude = exclude;
        }

        @Override
        public void process(final Record<String, String> record) {
            if (record.value() == null || !record.value().contains(exclude)) {
                context.forward(record);
            }
        }
    }

    /** {@code route}: forwards to the direct child named by the record's value (or key). */
    static final class RouteProcessor extends Base {
        private final boolean byKey;

        RouteProcessor(final boolean byKey) {
            this.byKey = byKey;
        }

        @Override
        public void process(final Record<String, String> record) {
            context.forward(record, byKey ? record.key() : record.value());
        }
    }

    /** {@code count}: counts records per key in a key-value store and forwards key -> count. */
    static final class CountProcessor extends Base {
        private final String storeName;
        private KeyValueStore<String, String> store;

        CountProcessor(final String storeName) {
            this.storeName = storeName;
        }

        @Override
        public void init(final ProcessorContext<String, String> context) {
            super.init(context);
            store = context.getStateStore(storeName);
        }

        @Override
        public void process(final Record<String, String> record) {
            final String old = store.get(record.key());
            final String count = Long.toString(old == null ? 1L : Long.parseLong(old) + 1L);
            store.put(record.key(), count);
            context.forward(record.withValue(count));
        }
    }

    /** {@code metadata}: forwards {@code value|topic|partition|offset} of the record being processed. */
    static final class MetadataProcessor extends Base {
        @Override
        public void process(final Record<String, String> record) {
            final Optional<RecordMetadata> meta = context.recordMetadata();
            final String suffix = meta
                .map(m -> m.topic() + "|" + m.partition() + "|" + m.offset())
                .orElse("none");
            context.forward(record.withValue(record.value() + "|" + suffix));
        }
    }

    /** One {@code schedules} entry of a {@code punctuate} processor. */
    static final class ScheduleSpec {
        final long intervalMs;
        final String type;
        final int cancelAfter;
        final String cancelOnValue;
        final String scheduleOnValue;

        private ScheduleSpec(final long intervalMs, final String type, final int cancelAfter,
                             final String cancelOnValue, final String scheduleOnValue) {
            this.intervalMs = intervalMs;
            this.type = type;
            this.cancelAfter = cancelAfter;
            this.cancelOnValue = cancelOnValue;
            this.scheduleOnValue = scheduleOnValue;
        }

        static ScheduleSpec fromJson(final JsonNode s) {
            return new ScheduleSpec(
                s.path("interval_ms").asLong(),
                s.path("type").asText(),
                s.path("cancel_after").asInt(0),
                s.hasNonNull("cancel_on_value") ? s.get("cancel_on_value").asText() : null,
                s.hasNonNull("schedule_on_value") ? s.get("schedule_on_value").asText() : null);
        }
    }

    /**
     * {@code punctuate}: schedules punctuations; each forwards key=processor name,
     * value={@code punct:<TYPE>:<timestamp>} with the punctuation timestamp. Input records are
     * forwarded (if {@code forward_input}) as {@code <value>@<current stream time>}.
     */
    static final class PunctuateProcessor extends Base {
        private final String name;
        private final List<ScheduleSpec> specs;
        private final boolean forwardInput;
        private final Cancellable[] handles;
        private final int[] calls;

        PunctuateProcessor(final String name, final List<ScheduleSpec> specs, final boolean forwardInput) {
            this.name = name;
            this.specs = specs;
            this.forwardInput = forwardInput;
            this.handles = new Cancellable[specs.size()];
            this.calls = new int[specs.size()];
        }

        @Override
        public void init(final ProcessorContext<String, String> context) {
            super.init(context);
            for (int i = 0; i < specs.size(); i++) {
                if (specs.get(i).scheduleOnValue == null) {
                    start(i);
                }
            }
        }

        private void start(final int i) {
            final ScheduleSpec spec = specs.get(i);
            handles[i] = context.schedule(
                Duration.ofMillis(spec.intervalMs),
                PunctuationType.valueOf(spec.type),
                timestamp -> punctuate(i, timestamp));
        }

        private void punctuate(final int i, final long timestamp) {
            final ScheduleSpec spec = specs.get(i);
            calls[i]++;
            context.forward(new Record<>(name, "punct:" + spec.type + ":" + timestamp, timestamp));
            if (spec.cancelAfter > 0 && calls[i] == spec.cancelAfter) {
                handles[i].cancel();
            }
        }

        @Override
        public void process(final Record<String, String> record) {
            for (int i = 0; i < specs.size(); i++) {
                final ScheduleSpec spec = specs.get(i);
                if (handles[i] != null && record.value() != null && record.value().equals(spec.cancelOnValue)) {
                    handles[i].cancel();
                }
                if (handles[i] == null && record.value() != null && record.value().equals(spec.scheduleOnValue)) {
                    start(i);
                }
            }
            if (forwardInput) {
                context.forward(record.withValue(record.value() + "@" + context.currentStreamTimeMs()));
            }
        }
    }
}
