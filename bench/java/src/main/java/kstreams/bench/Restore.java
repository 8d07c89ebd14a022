package kstreams.bench;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.processor.StateRestoreListener;

/**
 * The Java side of {@code python -m bench restore}: how fast Kafka Streams brings the
 * {@code count} workload's store back from its changelog into an empty state directory.
 *
 * <pre>
 * java -cp kstreams-bench.jar:DEPS kstreams.bench.Restore --bootstrap B --app-id A --input IN
 *      --output OUT --partitions P --state-dir D --records N [--timeout-s S] [--config KEY=VALUE ...]
 * </pre>
 *
 * <p>The topology is {@link Workloads#build} of {@code count}: a source on {@code IN} (as many
 * partitions as the changelog), a processor with the persistent store {@code counts} (logged to
 * {@code A-counts-changelog}, which the caller has filled) and a sink to {@code OUT}. One stream
 * thread, at_least_once. A global restore listener keeps the first {@code onRestoreStart} and the
 * last of the {@code P} {@code onRestoreEnd}; when they all came, the client is closed (bounded
 * by 30 s) and one JSON line goes to stdout: {@code {"records": <sum of totalRestored>,
 * "seconds": <first start to last end>}}. JVM start-up, group join and close are outside it.
 *
 * <p>Exit codes: 0 done; 1 the restored total is not {@code N} (the line is printed all the
 * same); 2 the client died; 3 the restore did not end within the timeout (300 s by default,
 * from {@code start()}); 64 bad arguments. Every failure says why on stderr.
 */
public final class Restore {
    private static final List<String> REQUIRED = List.of("bootstrap", "app-id", "input", "output", "partitions",
            "state-dir", "records");
    private static final List<String> KNOWN = List.of("bootstrap", "app-id", "input", "output", "partitions",
            "state-dir", "records", "timeout-s", "config");

    private Restore() {}

    public static void main(String[] args) throws InterruptedException {
        Map<String, String> options = new LinkedHashMap<>();
        List<String> extra = new ArrayList<>();
        Properties props = new Properties();
        int partitions = 0;
        long expected = 0;
        Duration timeout = Duration.ZERO;
        try {
            Main.parse(args, KNOWN, REQUIRED, options, extra);
            partitions = Integer.parseInt(options.get("partitions"));
            expected = Long.parseLong(options.get("records"));
            timeout = Duration.ofMillis(Math.round(Double.parseDouble(options.getOrDefault("timeout-s", "300")) * 1000));
            if (partitions < 1) {
                throw new IllegalArgumentException("--partitions must be at least 1");
            }
            props.put(StreamsConfig.APPLICATION_ID_CONFIG, options.get("app-id"));
            props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, options.get("bootstrap"));
            props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
            props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, "1");
            props.put(StreamsConfig.STATE_DIR_CONFIG, options.get("state-dir"));
            Main.putConfig(props, extra);
        } catch (IllegalArgumentException e) {  // NumberFormatException included
            System.err.println("error: " + e.getMessage());
            System.exit(64);
        }

        Timing timing = new Timing(partitions);
        AtomicReference<Throwable> died = new AtomicReference<>();
        long unusedWindowMs = 10_000L;  // the count workload has no window
        KafkaStreams streams = new KafkaStreams(Workloads.build("count", options.get("input"), options.get("output"),
                unusedWindowMs), props);
        streams.setGlobalStateRestoreListener(timing);
        streams.setUncaughtExceptionHandler(exception -> {
            died.set(exception);
            timing.stop();
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.setStateListener((newState, oldState) -> {
            if (newState == KafkaStreams.State.ERROR || newState == KafkaStreams.State.PENDING_ERROR) {
                timing.stop();
            }
        });
        streams.start();
        boolean done = timing.await(timeout);
        streams.close(Main.CLOSE_TIMEOUT);

        if (died.get() != null) {
            System.err.println("error: the streams client died during the restore: " + died.get());
            died.get().printStackTrace();
            System.exit(2);
        }
        if (!done && timing.stopped()) {
            System.err.println("error: the streams client went to ERROR before the restore ended");
            System.exit(2);
        }
        if (!done) {
            System.err.printf("error: the restore did not end within %d s: %d of %d partition(s) ended, "
                    + "%d of %d records restored%n", timeout.toSeconds(), timing.ended(), timing.partitions,
                    timing.restored(), expected);
            System.exit(3);
        }
        ObjectNode line = Json.object();
        line.put("records", timing.restored());
        line.put("seconds", timing.seconds());
        System.out.println(line);
        System.out.flush();
        if (timing.restored() != expected) {
            System.err.printf("error: restored %d records, expected %d%n", timing.restored(), expected);
            System.exit(1);
        }
        System.exit(0);
    }

    /** A restore listener that keeps the first start, the last end and the totals of {@code partitions}. */
    static final class Timing implements StateRestoreListener {
        final int partitions;
        private long firstStartNanos;
        private long lastEndNanos;
        private boolean started;
        private int ended;
        private long restored;
        private boolean stopped;

        Timing(int partitions) {
            this.partitions = partitions;
        }

        @Override
        public synchronized void onRestoreStart(TopicPartition partition, String storeName, long startingOffset,
                                                long endingOffset) {
            if (!started) {
                started = true;
                firstStartNanos = System.nanoTime();
            }
        }

        @Override
        public void onBatchRestored(TopicPartition partition, String storeName, long batchEndOffset,
                                    long numRestored) {}

        @Override
        public synchronized void onRestoreEnd(TopicPartition partition, String storeName, long totalRestored) {
            restored += totalRestored;
            ended++;
            if (ended == partitions) {
                lastEndNanos = System.nanoTime();
                notifyAll();
            }
        }

        /** Wake {@link #await} now: the client failed. */
        synchronized void stop() {
            stopped = true;
            notifyAll();
        }

        /** Wait until every partition's restore ended (true), or the client failed or the time is up (false). */
        synchronized boolean await(Duration timeout) throws InterruptedException {
            long deadline = System.nanoTime() + timeout.toNanos();
            while (ended < partitions && !stopped) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    break;
                }
                wait(Math.max(1, left / 1_000_000));
            }
            return ended >= partitions;
        }

        synchronized boolean stopped() {
            return stopped;
        }

        synchronized int ended() {
            return ended;
        }

        synchronized long restored() {
            return restored;
        }

        /** Seconds from the first {@code onRestoreStart} to the last {@code onRestoreEnd}. */
        synchronized double seconds() {
            return (lastEndNanos - firstStartNanos) / 1e9;
        }
    }
}
