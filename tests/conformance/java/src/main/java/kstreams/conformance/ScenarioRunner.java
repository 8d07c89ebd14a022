package kstreams.conformance;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.state.Stores;
import org.apache.kafka.streams.test.TestRecord;

/**
 * Runs one scenario (see {@code tests/conformance/README.md}) through Kafka Streams'
 * {@link TopologyTestDriver} and returns the observations as a JSON object:
 * {@code name}, {@code describe} (null if building the topology failed), {@code reads} (one per
 * {@code read} step), {@code outputs} (the records left in each output topic at the end) and
 * {@code error}: null, or where it happened ({@code phase} "topology", "driver" or "steps" and the
 * {@code index} of the operation or step) with the {@code chain} of [class, message] of the
 * exception and its causes. Nothing runs after an error (but outputs are read after a failed step).
 *
 * <p>The driver runs every sub-topology in a single task {@code 0_0}; scenarios avoid output that
 * depends on that (e.g. stream time shared across sub-topologies).
 */
final class ScenarioRunner {

    private final ObjectMapper mapper;
    private final JsonNode scenario;
    private final boolean withHeaders;

    ScenarioRunner(final ObjectMapper mapper, final JsonNode scenario) {
        this.mapper = mapper;
        this.scenario = scenario;
        this.withHeaders = scenario.path("record_headers").asBoolean(false);
    }

    /** Builds the topology, runs the steps and returns the observations. */
    ObjectNode run() {
        final ObjectNode result = mapper.createObjectNode();
        result.put("name", scenario.path("name").asText());
        result.putNull("describe");
        final ArrayNode reads = result.putArray("reads");
        final ObjectNode outputs = result.putObject("outputs");
        result.putNull("error");

        final JsonNode ops = scenario.path("topology");
        final Topology topology = new Topology();
        for (int i = 0; i < ops.size(); i++) {
            try {
                applyOp(topology, ops.get(i));
            } catch (final RuntimeException e) {
                result.set("error", errorJson("topology", i, e));
                return result;
            }
        }
        result.put("describe", topology.describe().toString());

        final JsonNode steps = scenario.path("steps");
        final JsonNode outputTopics = scenario.path("outputs");
        if (steps.isEmpty() && outputTopics.isEmpty() && !scenario.has("expect_error")) {
            return result; // describe-only scenario
        }
        final Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, "conf");
        scenario.path("config").fields().forEachRemaining(
            e -> props.put(e.getKey(), e.getValue().asText()));
        final Instant wallClock = Instant.ofEpochMilli(scenario.path("initial_wall_clock_ms").asLong(0L));

        final TopologyTestDriver driver;
        try {
            driver = new TopologyTestDriver(topology, props, wallClock);
        } catch (final RuntimeException e) {
            result.set("error", errorJson("driver", 0, e));
            return result;
        }
        try {
            final Map<String, TestInputTopic<String, String>> inputs = new HashMap<>();
            final Map<String, TestOutputTopic<String, String>> outs = new HashMap<>();
            for (int i = 0; i < steps.size(); i++) {
                try {
                    runStep(driver, steps.get(i), i, inputs, outs, reads);
                } catch (final RuntimeException e) {
                    result.set("error", errorJson("steps", i, e));
                    break;
                }
            }
            for (final JsonNode topic : outputTopics) {
                outputs.set(topic.asText(), readAll(output(driver, outs, topic.asText())));
            }
        } finally {
            try {
                driver.close();
            } catch (final RuntimeException ignored) {
                // closing after a failed step may fail again; the step's error is what counts
            }
        }
        return result;
    }

    private void runStep(final TopologyTestDriver driver, final JsonNode step, final int index,
                         final Map<String, TestInputTopic<String, String>> inputs,
                         final Map<String, TestOutputTopic<String, String>> outs,
                         final ArrayNode reads) {
        final String op = step.path("op").asText();
        switch (op) {
            case "pipe": {
                final String topic = step.path("topic").asText();
                final TestInputTopic<String, String> input = inputs.computeIfAbsent(topic,
                    t -> driver.createInputTopic(t, new StringSerializer(), new StringSerializer()));
                final String key = textOrNull(step.get("key"));
                final String value = textOrNull(step.get("value"));
                final long timestamp = step.path("timestamp").asLong();
                final RecordHeaders headers = new RecordHeaders();
                for (final JsonNode h : step.path("headers")) {
                    final String hv = textOrNull(h.get(1));
                    headers.add(h.get(0).asText(), hv == null ? null : hv.getBytes(StandardCharsets.UTF_8));
                }
                input.pipeInput(new TestRecord<>(key, value, headers, timestamp));
                break;
            }
            case "advance":
                driver.advanceWallClockTime(Duration.ofMillis(step.path("ms").asLong()));
                break;
            case "read": {
                final String topic = step.path("topic").asText();
                final ObjectNode read = reads.addObject();
                read.put("step", index);
                read.put("topic", topic);
                read.set("records", readAll(output(driver, outs, topic)));
                break;
            }
            default:
                throw new IllegalArgumentException("unknown step op: " + op);
        }
    }

    private static TestOutputTopic<String, String> output(
            final TopologyTestDriver driver, final Map<String, TestOutputTopic<String, String>> outs,
            final String topic) {
        return outs.computeIfAbsent(topic,
            t -> driver.createOutputTopic(t, new StringDeserializer(), new StringDeserializer()));
    }

    private ArrayNode readAll(final TestOutputTopic<String, String> topic) {
        final ArrayNode records = mapper.createArrayNode();
        for (final TestRecord<String, String> r : topic.readRecordsToList()) {
            final ArrayNode rec = records.addArray();
            rec.add(r.key());
            rec.add(r.value());
            rec.add(r.timestamp());
            if (withHeaders) {
                final ArrayNode hs = rec.addArray();
                for (final Header h : r.headers()) {
                    final ArrayNode pair = hs.addArray();
                    pair.add(h.key());
                    pair.add(h.value() == null ? null : new String(h.value(), StandardCharsets.UTF_8));
                }
            }
        }
        return records;
    }

    private ObjectNode errorJson(final String phase, final int index, final Throwable error) {
        final ObjectNode json = mapper.createObjectNode();
        json.put("phase", phase);
        json.put("index", index);
        final ArrayNode chain = json.putArray("chain");
        final List<Throwable> seen = new ArrayList<>();
        for (Throwable t = error; t != null && !seen.contains(t); t = t.getCause()) {
            seen.add(t);
            final ArrayNode link = chain.addArray();
            link.add(t.getClass().getName());
            link.add(t.getMessage());
        }
        return json;
    }

    private static String textOrNull(final JsonNode node) {
        return node == null || node.isNull() ? null : node.asText();
    }

    private static String[] strings(final JsonNode array) {
        final String[] out = new String[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asText();
        }
        return out;
    }

    /** Applies one {@code topology} operation (insertion order matters for describe()). */
    static void applyOp(final Topology topology, final JsonNode op) {
        final String kind = op.path("op").asText();
        switch (kind) {
            case "source":
                topology.addSource(op.path("name").asText(), new StringDeserializer(),
                    new StringDeserializer(), strings(op.path("topics")));
                break;
            case "processor": {
                final String name = op.path("name").asText();
                topology.addProcessor(name,
                    Vocabulary.supplier(name, op.path("kind").asText(), op.path("params")),
                    strings(op.path("parents")));
                break;
            }
            case "sink":
                topology.addSink(op.path("name").asText(), op.path("topic").asText(),
                    new StringSerializer(), new StringSerializer(), strings(op.path("parents")));
                break;
            case "store":
                topology.addStateStore(
                    Stores.keyValueStoreBuilder(Stores.inMemoryKeyValueStore(op.path("name").asText()),
                        Serdes.String(), Serdes.String()),
                    strings(op.path("processors")));
                break;
            case "connect":
                topology.connectProcessorAndStateStores(op.path("processor").asText(),
                    strings(op.path("stores")));
                break;
            default:
                throw new IllegalArgumentException("unknown topology op: " + kind);
        }
    }
}
