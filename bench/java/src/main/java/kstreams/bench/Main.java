package kstreams.bench;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;

/**
 * One Java Kafka Streams instance of the benchmark, run as a plain process:
 *
 * <pre>
 * java -cp kstreams-bench.jar:DEPS kstreams.bench.Main --bootstrap B --workload W
 *      --guarantee at_least_once|exactly_once_v2 --threads T --app-id A --input IN --output OUT
 *      [--state-dir D] [--commit-interval-ms MS] [--window-ms MS] [--config KEY=VALUE ...]
 * </pre>
 *
 * <p>On start it prints {@code BENCH settings=<json>} (its effective settings) and the topology;
 * when the first input record reaches a processor, {@code BENCH first_record_ms=<epoch ms>}. It
 * runs until SIGTERM/SIGINT, then closes the streams client (bounded by 30 s) and exits 0; it exits
 * 2 if the client died (uncaught exception) and 64 on bad arguments.
 */
public final class Main {
    static final Duration CLOSE_TIMEOUT = Duration.ofSeconds(30);
    private static final List<String> REQUIRED = List.of("bootstrap", "workload", "guarantee", "app-id", "input",
            "output");
    private static final List<String> KNOWN = List.of("bootstrap", "workload", "guarantee", "threads", "app-id",
            "input", "output", "state-dir", "commit-interval-ms", "window-ms", "config");

    private Main() {}

    public static void main(String[] args) throws InterruptedException {
        Map<String, String> options = new LinkedHashMap<>();
        List<String> extra = new ArrayList<>();
        try {
            parse(args, KNOWN, REQUIRED, options, extra);
        } catch (IllegalArgumentException e) {
            System.err.println("error: " + e.getMessage());
            System.exit(64);
        }
        String workload = options.get("workload");
        long windowMs = Long.parseLong(options.getOrDefault("window-ms", "10000"));

        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, options.get("app-id"));
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, options.get("bootstrap"));
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, options.get("guarantee"));
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, options.getOrDefault("threads", "1"));
        if (options.containsKey("state-dir")) {
            props.put(StreamsConfig.STATE_DIR_CONFIG, options.get("state-dir"));
        }
        if (options.containsKey("commit-interval-ms")) {
            props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, options.get("commit-interval-ms"));
        }
        try {
            putConfig(props, extra);
        } catch (IllegalArgumentException e) {
            System.err.println("error: " + e.getMessage());
            System.exit(64);
        }

        Topology topology = Workloads.build(workload, options.get("input"), options.get("output"), windowMs);
        StreamsConfig config = new StreamsConfig(props);
        printSettings(options, props, config, windowMs);
        System.out.println(topology.describe());
        System.out.flush();

        KafkaStreams streams = new KafkaStreams(topology, props);
        CountDownLatch stopped = new CountDownLatch(1);
        AtomicBoolean failed = new AtomicBoolean(false);
        streams.setUncaughtExceptionHandler(exception -> {
            System.err.println("BENCH error=" + exception);
            exception.printStackTrace();
            failed.set(true);
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.setStateListener((newState, oldState) -> {
            System.out.println("BENCH state=" + newState);
            System.out.flush();
            if (newState == KafkaStreams.State.ERROR || newState == KafkaStreams.State.NOT_RUNNING) {
                stopped.countDown();
            }
        });
        Thread closer = new Thread(() -> {
            streams.close(CLOSE_TIMEOUT);
            stopped.countDown();
        }, "bench-shutdown");
        Runtime.getRuntime().addShutdownHook(closer);
        streams.start();
        stopped.await();
        if (failed.get()) {
            streams.close(CLOSE_TIMEOUT);
            Runtime.getRuntime().halt(2);
        }
    }

    /**
     * Parse {@code --OPTION VALUE} pairs of the {@code known} options into {@code options}; every
     * {@code --config} value goes to {@code extra}. Throws {@link IllegalArgumentException} on an
     * unknown option, a missing value or a missing {@code required} option.
     */
    static void parse(String[] args, List<String> known, List<String> required, Map<String, String> options,
                      List<String> extra) {
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (!arg.startsWith("--") || i + 1 >= args.length) {
                throw new IllegalArgumentException("expected --OPTION VALUE, got " + arg);
            }
            String name = arg.substring(2);
            if (!known.contains(name)) {
                throw new IllegalArgumentException("unknown option --" + name + " (known: " + known + ")");
            }
            String value = args[++i];
            if (name.equals("config")) {
                extra.add(value);
            } else {
                options.put(name, value);
            }
        }
        for (String name : required) {
            if (!options.containsKey(name)) {
                throw new IllegalArgumentException("missing --" + name);
            }
        }
    }

    /** Put each {@code KEY=VALUE} of {@code pairs} into {@code props}; IllegalArgumentException if malformed. */
    static void putConfig(Properties props, List<String> pairs) {
        for (String pair : pairs) {
            int eq = pair.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("--config wants KEY=VALUE, got " + pair);
            }
            props.put(pair.substring(0, eq), pair.substring(eq + 1));
        }
    }

    /** The version of the Kafka jars on the class path (from kafka-clients' own version file). */
    private static String kafkaVersion() {
        Properties version = new Properties();
        try (InputStream in = KafkaStreams.class.getResourceAsStream("/kafka/kafka-version.properties")) {
            if (in != null) {
                version.load(in);
            }
        } catch (IOException e) {
            return "unknown";
        }
        return version.getProperty("version", "unknown");
    }

    /** Print {@code BENCH settings=<json>}: the options, the given and the effective streams configs. */
    private static void printSettings(Map<String, String> options, Properties props, StreamsConfig config,
                                      long windowMs) {
        ObjectNode settings = Json.object();
        settings.put("system", "java-kafka-streams");
        settings.put("kafka_streams_version", kafkaVersion());
        settings.put("java_version", System.getProperty("java.version"));
        settings.put("java_vm", System.getProperty("java.vm.name"));
        settings.put("max_heap_bytes", Runtime.getRuntime().maxMemory());
        settings.put("available_processors", Runtime.getRuntime().availableProcessors());
        settings.put("workload", options.get("workload"));
        settings.put("window_ms", windowMs);
        settings.put("input", options.get("input"));
        settings.put("output", options.get("output"));
        ObjectNode given = settings.putObject("config");
        new TreeMap<>(props).forEach((k, v) -> given.put(String.valueOf(k), String.valueOf(v)));
        ObjectNode effective = settings.putObject("effective");
        for (String key : List.of(
                StreamsConfig.PROCESSING_GUARANTEE_CONFIG,
                StreamsConfig.NUM_STREAM_THREADS_CONFIG,
                StreamsConfig.COMMIT_INTERVAL_MS_CONFIG,
                StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG,
                StreamsConfig.STATE_DIR_CONFIG,
                StreamsConfig.REPLICATION_FACTOR_CONFIG,
                StreamsConfig.BUFFERED_RECORDS_PER_PARTITION_CONFIG,
                StreamsConfig.MAX_TASK_IDLE_MS_CONFIG,
                StreamsConfig.NUM_STANDBY_REPLICAS_CONFIG)) {
            effective.put(key, String.valueOf(config.originals().getOrDefault(key, config.values().get(key))));
        }
        System.out.println("BENCH settings=" + settings);
        System.out.flush();
    }
}
