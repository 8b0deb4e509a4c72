package adapters.logcheck;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** One adapter's chain (§4, §10 step 2): its partition and its placed links by seq. */
final class Chain {
    /** A placed link: an event and the record that carried it. */
    static final class Link {
        final Event event;
        final int partition;
        final long offset;
        /** Position in log order (the n-th record read). */
        final long order;

        Link(Event event, int partition, long offset, long order) {
            this.event = event;
            this.partition = partition;
            this.offset = offset;
            this.order = order;
        }

        Problem problem(String code, String message) {
            return Problem.atRecord(code, partition, offset, event, message);
        }
    }

    final String adapter;
    final byte[] adapterUtf8;
    /** The partition of the chain's first record (§10 step 2). */
    final int partition;
    final Map<Long, Link> links = new HashMap<>();
    /** The highest seq placed so far (0 before any). */
    long highest = 0;

    Chain(String adapter, int partition) {
        this.adapter = adapter;
        this.adapterUtf8 = adapter.getBytes(StandardCharsets.UTF_8);
        this.partition = partition;
    }

    /** The placed links in seq order. */
    List<Link> inSeqOrder() {
        List<Link> out = new ArrayList<>(links.values());
        out.sort((a, b) -> Long.compare(a.event.seq, b.event.seq));
        return out;
    }

    /** The link with the highest seq, or null when none is placed. */
    Link highestLink() {
        Link best = null;
        for (Link l : links.values()) {
            if (best == null || l.event.seq > best.event.seq) best = l;
        }
        return best;
    }
}
