package kstreams.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;

/**
 * JSON values as Jackson trees: the value serde of every source and sink of the benchmark.
 *
 * <p>The Python systems parse with {@code json.loads} into a dict and write with {@code json.dumps};
 * this is the same work in Java: bytes to a tree at the source, a tree to bytes at the sink.
 */
final class Json {
    static final ObjectMapper MAPPER = new ObjectMapper();

    private Json() {}

    /** A new empty JSON object. */
    static ObjectNode object() {
        return MAPPER.createObjectNode();
    }

    /** Serde of JSON values; a null payload stays null. */
    static Serde<JsonNode> serde() {
        Serializer<JsonNode> serializer = (topic, node) -> {
            if (node == null) {
                return null;
            }
            try {
                return MAPPER.writeValueAsBytes(node);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        };
        Deserializer<JsonNode> deserializer = (topic, data) -> {
            if (data == null) {
                return null;
            }
            try {
                return MAPPER.readTree(data);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        };
        return Serdes.serdeFrom(serializer, deserializer);
    }
}
