package adapters.logcheck;

/** One record as read from the topic or a bundle (§1, §11), before decoding. */
final class RawRecord {
    final int partition;
    final long offset;
    /** Null when the record has no key. */
    final byte[] key;
    /** Null for a tombstone. */
    final byte[] value;
    /** The last {@code log_signature} / {@code log_key_id} header values, or null (§5). */
    final byte[] logSignature;
    final byte[] logKeyId;

    RawRecord(int partition, long offset, byte[] key, byte[] value, byte[] logSignature, byte[] logKeyId) {
        this.partition = partition;
        this.offset = offset;
        this.key = key;
        this.value = value;
        this.logSignature = logSignature;
        this.logKeyId = logKeyId;
    }
}
