package adapters.logcheck;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Reads a topic in log order (§10): partitions ascending, each from its beginning offset to
 * the end offset captured at the start. No consumer group: assign and seek, nothing committed.
 */
final class KafkaSource implements RecordSource {
    private static final Duration META_TIMEOUT = Duration.ofSeconds(20);
    /** Give up when a partition yields nothing for this long before its end offset. */
    private static final long STALL_MS = 60_000;

    private final KafkaConsumer<byte[], byte[]> consumer;
    private final List<TopicPartition> partitions;
    private final Map<TopicPartition, Long> begin;
    private final Map<TopicPartition, Long> end;
    private int current = -1;
    private Iterator<ConsumerRecord<byte[], byte[]>> pending = Collections.emptyIterator();

    private KafkaSource(KafkaConsumer<byte[], byte[]> consumer, List<TopicPartition> partitions,
                        Map<TopicPartition, Long> begin, Map<TopicPartition, Long> end) {
        this.consumer = consumer;
        this.partitions = partitions;
        this.begin = begin;
        this.end = end;
    }

    /**
     * Connects. With a user: SASL_PLAINTEXT and SCRAM-SHA-512, else PLAINTEXT. Any failure
     * (unreachable, refused credentials, no such topic) is an IOException.
     */
    static KafkaSource open(String bootstrap, String topic, String user, String password) throws IOException {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "logcheck-java");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        // Records of aborted transactions never happened; read what was committed.
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, String.valueOf(Verifier.BATCH));
        p.put(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, String.valueOf(64 << 20));
        p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, String.valueOf(16 << 20));
        // A fetch at a partition's end otherwise waits fetch.max.wait.ms (500) on the broker
        // for more, and the log is read partition by partition: every switch cost that.
        p.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "10");
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, "30000");
        if (user != null) {
            p.put("security.protocol", "SASL_PLAINTEXT");
            p.put("sasl.mechanism", "SCRAM-SHA-512");
            p.put("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\""
                + jaasEscape(user) + "\" password=\"" + jaasEscape(password) + "\";");
        } else {
            p.put("security.protocol", "PLAINTEXT");
        }
        KafkaConsumer<byte[], byte[]> consumer = null;
        try {
            consumer = new KafkaConsumer<>(p);
            List<PartitionInfo> infos = consumer.partitionsFor(topic, META_TIMEOUT);
            if (infos == null || infos.isEmpty()) throw new IOException("topic " + topic + " does not exist");
            List<TopicPartition> parts = new ArrayList<>();
            for (PartitionInfo i : infos) parts.add(new TopicPartition(topic, i.partition()));
            parts.sort(Comparator.comparingInt(TopicPartition::partition));
            Map<TopicPartition, Long> begin = consumer.beginningOffsets(parts, META_TIMEOUT);
            Map<TopicPartition, Long> end = consumer.endOffsets(parts, META_TIMEOUT);
            return new KafkaSource(consumer, parts, begin, end);
        } catch (KafkaException e) {
            if (consumer != null) consumer.close(CloseOptions.timeout(Duration.ZERO));
            throw new IOException("Kafka at " + bootstrap + ": " + Checkpoints.oneLine(e.getMessage()));
        } catch (IOException | RuntimeException e) {
            if (consumer != null) consumer.close(CloseOptions.timeout(Duration.ZERO));
            throw e instanceof IOException ? (IOException) e
                : new IOException("Kafka at " + bootstrap + ": " + Checkpoints.oneLine(String.valueOf(e)));
        }
    }

    private static String jaasEscape(String s) {
        return s.replace("\\", "\\\\").replace("\"", "\\\"");
    }

    @Override
    public List<?> nextBatch() throws IOException {
        List<ConsumerRecord<byte[], byte[]>> batch = new ArrayList<>(Verifier.BATCH);
        try {
            while (batch.size() < Verifier.BATCH) {
                if (pending.hasNext()) {
                    ConsumerRecord<byte[], byte[]> r = pending.next();
                    if (r.offset() < end.get(partitions.get(current))) batch.add(r);
                    continue;
                }
                if (!fill()) break;
            }
        } catch (KafkaException e) {
            throw new IOException("Kafka: " + Checkpoints.oneLine(e.getMessage()));
        }
        return batch.isEmpty() ? null : batch;
    }

    /** Polls the current partition (moving to the next when done); false at the very end. */
    private boolean fill() throws IOException {
        if (current >= partitions.size()) return false; // called again after the very end
        while (true) {
            if (current >= 0 && consumer.position(partitions.get(current)) < end.get(partitions.get(current))) {
                TopicPartition tp = partitions.get(current);
                long deadline = System.currentTimeMillis() + STALL_MS;
                while (System.currentTimeMillis() < deadline) {
                    ConsumerRecords<byte[], byte[]> got = consumer.poll(Duration.ofMillis(500));
                    if (!got.isEmpty()) {
                        pending = got.records(tp).iterator();
                        return true;
                    }
                    if (consumer.position(tp) >= end.get(tp)) break; // only markers or gaps were left
                }
                if (consumer.position(tp) < end.get(tp)) {
                    throw new IOException("partition " + tp.partition() + " stalled at offset "
                        + consumer.position(tp) + " before its end " + end.get(tp));
                }
            }
            current++;
            if (current >= partitions.size()) return false;
            TopicPartition tp = partitions.get(current);
            consumer.assign(List.of(tp));
            consumer.seek(tp, begin.get(tp));
        }
    }

    @Override
    public RawRecord materialize(Object item) {
        @SuppressWarnings("unchecked")
        ConsumerRecord<byte[], byte[]> r = (ConsumerRecord<byte[], byte[]>) item;
        Header sig = r.headers().lastHeader("log_signature");
        Header keyId = r.headers().lastHeader("log_key_id");
        return new RawRecord(r.partition(), r.offset(), r.key(), r.value(),
            sig == null ? null : sig.value(), keyId == null ? null : keyId.value());
    }

    @Override
    public void close() {
        consumer.close(CloseOptions.timeout(Duration.ofSeconds(5)));
    }
}
