package adapters.logcheck;

import java.io.Closeable;
import java.io.IOException;
import java.util.List;

/**
 * Records in log order (§10: partitions ascending, each from its first offset to its end),
 * handed out in batches. {@link #materialize} turns a batch item into a RawRecord; it runs
 * on worker threads so that parsing overlaps with reading.
 */
interface RecordSource extends Closeable {
    /** The next batch of items, or null at the end. */
    List<?> nextBatch() throws IOException;

    /** Turns one item of a batch into a record; thread-safe. */
    RawRecord materialize(Object item) throws IOException;

    @Override
    default void close() throws IOException {}
}
