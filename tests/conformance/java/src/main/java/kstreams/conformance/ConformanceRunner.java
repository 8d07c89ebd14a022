package kstreams.conformance;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.File;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;

/**
 * Entry point: runs every scenario file named on the command line, in one JVM, and prints one
 * JSON document per scenario on its own line of standard output.
 *
 * <p>A scenario whose topology cannot be built (a harness bug, not an expected error) is reported
 * as {@code {"name": ..., "harness_error": ...}} and the run continues; the exit code is then 1.
 */
public final class ConformanceRunner {

    private ConformanceRunner() {
    }

    public static void main(final String[] args) throws Exception {
        // Keep stdout for the JSON documents only, whatever a library might print.
        final PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true,
            StandardCharsets.UTF_8);
        System.setOut(System.err);

        final ObjectMapper mapper = new ObjectMapper();
        int failures = 0;
        for (final String path : args) {
            ObjectNode result;
            String name = new File(path).getName().replaceFirst("\\.json$", "");
            try {
                final JsonNode scenario = mapper.readTree(new File(path));
                name = scenario.path("name").asText(name);
                result = new ScenarioRunner(mapper, scenario).run();
            } catch (final Exception e) {
                failures++;
                final StringWriter trace = new StringWriter();
                e.printStackTrace(new PrintWriter(trace));
                result = mapper.createObjectNode();
                result.put("name", name);
                result.put("harness_error", trace.toString());
            }
            out.println(mapper.writeValueAsString(result));
        }
        out.flush();
        System.exit(failures == 0 ? 0 : 1);
    }
}
