// Produces one record per key with Java's default partitioner and prints "key partition" lines.
// Run as a single-file program: java -cp "tests/kafka/target/libs/*" JavaKeyedProducer.java BOOTSTRAP TOPIC KEY...
import java.util.Properties;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringSerializer;

public class JavaKeyedProducer {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        props.put("key.serializer", StringSerializer.class.getName());
        props.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
            for (int i = 2; i < args.length; i++) {
                RecordMetadata md = producer.send(new ProducerRecord<>(args[1], args[i], "v")).get();
                System.out.println(args[i] + " " + md.partition());
            }
        }
    }
}
