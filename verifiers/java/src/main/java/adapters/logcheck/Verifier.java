package adapters.logcheck;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ForkJoinPool;
import java.util.stream.IntStream;

/**
 * The record-by-record verification of §10.
 *
 * <p>Steps 1–2 (decode, canonical bytes, hash) and the signature checks of step 10 depend on
 * nothing but the record, the schemas and the keys, so they run on worker threads, a batch
 * at a time; steps 3–10 then run in log order on the calling thread. A signature is
 * verified ahead only when step 10 would look at it (above the anchored head, or always with
 * {@code --every-signature}); a record that step 3 finds to be a duplicate drops its result.
 */
final class Verifier {
    static final int BATCH = 4096;

    /** What the verifier trusts. With no log key, it checks the chain only. */
    static final class Options {
        /** False when no log key is trusted: no signatures, no checkpoints. */
        boolean signatures;
        boolean everySignature;
        /** Log keys after every checkpoint rotation. */
        Keys.Ring logRing = new Keys.Ring();
        /** Approval keys, or null when none were given. */
        Keys.Ring approvalKeys;
        /** The checkpoints, already checked (empty when unsigned). */
        Checkpoints.Result checkpoints;
    }

    /** What one record became on a worker thread. */
    static final class Processed {
        RawRecord raw;
        EventDecoder.Decoded decoded;
        Problem logSignature;
        Problem approvalSignature;
    }

    /** The verdict of §10 "Results". */
    static final class Result {
        boolean ok;
        long events;
        long duplicates;
        List<String> adapters;
        boolean signaturesChecked;
        int checkpoints;
        BigInteger latestCheckpoint = BigInteger.ZERO;
        List<Chain.Link> unanchored;
        List<Problem> problems;
        /** Every placed link, in log order (the fold of §8 uses it). */
        List<Chain.Link> placed;
    }

    private final Schemas schemas;
    private final Options options;
    private final ThreadLocal<EventDecoder> decoders;

    private long events;
    private long duplicates;
    private final Map<String, Chain> chains = new HashMap<>();
    /** §10 step 6: where each event_id was first seen. */
    private final Map<String, IdPlace> firstSeen = new HashMap<>();
    private final List<Problem> problems = new ArrayList<>();

    private record IdPlace(String adapter, long seq) {}

    Verifier(Schemas schemas, Options options) {
        this.schemas = schemas;
        this.options = options;
        this.decoders = ThreadLocal.withInitial(() -> new EventDecoder(schemas));
    }

    /** Reads every record of the source and returns the verdict. */
    Result run(RecordSource source) throws IOException {
        ForkJoinPool pool = new ForkJoinPool(Math.max(1, Runtime.getRuntime().availableProcessors()));
        try {
            CompletableFuture<Processed[]> pending = null;
            List<?> batch = source.nextBatch();
            while (batch != null) {
                List<?> b = batch;
                CompletableFuture<Processed[]> next =
                    CompletableFuture.supplyAsync(() -> processBatch(source, b), pool);
                if (pending != null) acceptAll(join(pending));
                pending = next;
                batch = source.nextBatch();
            }
            if (pending != null) acceptAll(join(pending));
        } finally {
            pool.shutdownNow();
        }
        return finish();
    }

    private static Processed[] join(CompletableFuture<Processed[]> f) throws IOException {
        try {
            return f.join();
        } catch (CompletionException e) {
            Throwable c = e.getCause();
            if (c instanceof UncheckedIOException) throw ((UncheckedIOException) c).getCause();
            if (c instanceof RuntimeException) throw (RuntimeException) c;
            if (c instanceof Error) throw (Error) c;
            throw e;
        }
    }

    private Processed[] processBatch(RecordSource source, List<?> batch) {
        Processed[] out = new Processed[batch.size()];
        IntStream.range(0, out.length).parallel().forEach(i -> {
            try {
                out[i] = process(source.materialize(batch.get(i)));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
        return out;
    }

    /** Steps 1–2 and the signature checks step 10 may need. Thread-safe. */
    Processed process(RawRecord raw) {
        Processed p = new Processed();
        p.raw = raw;
        p.decoded = decoders.get().decode(raw.value);
        Event e = p.decoded.event;
        if (e == null || !options.signatures) return p;
        // §5 / §10 step 10: an event at or below its adapter's anchored head needs no signature.
        Long head = options.checkpoints.anchored.get(e.adapter);
        if (options.everySignature || head == null || e.seq > head) {
            p.logSignature = Signatures.checkEvent(raw, e, options.logRing, options.checkpoints.retired);
        }
        if (options.approvalKeys != null && e.approval != null) {
            p.approvalSignature = Signatures.checkApproval(raw, e, options.approvalKeys);
        }
        return p;
    }

    private void acceptAll(Processed[] batch) {
        for (Processed p : batch) accept(p);
    }

    /** §10 "Per record", steps 1 and 3–10, in log order. */
    void accept(Processed p) {
        long order = events++;
        RawRecord raw = p.raw;
        EventDecoder.Decoded d = p.decoded;
        // Step 1.
        if (d.status == EventDecoder.Status.UNDECODABLE) {
            problems.add(Problem.atRecord("undecodable", raw.partition, raw.offset, null, d.message));
            return;
        }
        if (d.status == EventDecoder.Status.NOT_LIFECYCLE) {
            problems.add(Problem.atRecord("not_lifecycle", raw.partition, raw.offset, null, d.message));
            return;
        }
        Event e = d.event;
        // Step 2: the chain, created with this record's partition. (Intact was computed.)
        Chain chain = chains.computeIfAbsent(e.adapter, a -> new Chain(a, raw.partition));
        // Step 6's bookkeeping counts every record from step 3 on, duplicates included.
        firstSeen.putIfAbsent(e.eventId, new IdPlace(e.adapter, e.seq));

        // Step 3.
        Chain.Link held = chain.links.get(e.seq);
        boolean replacing = false;
        if (held != null) {
            if (held.event.eventId.equals(e.eventId) && held.event.hash.equals(e.hash) && e.intact) {
                duplicates++;
                return;
            }
            if (held.event.intact || !e.intact) {
                problems.add(Problem.atRecord("seq_reused", raw.partition, raw.offset, e,
                    "seq " + e.seq + " already holds event " + held.event.eventId
                        + " (partition " + held.partition + " offset " + held.offset + ")"));
                signatureChecks(p);
                return;
            }
            replacing = true; // the held link was not intact, this one is
        }
        // Step 4.
        if (raw.key == null || !Arrays.equals(raw.key, chain.adapterUtf8)) {
            problems.add(Problem.atRecord("key_mismatch", raw.partition, raw.offset, e,
                raw.key == null ? "record has no key" : "record key is not the adapter " + CanonicalJson.quote(e.adapter)));
        }
        // Step 5.
        if (raw.partition != chain.partition) {
            problems.add(Problem.atRecord("partition_split", raw.partition, raw.offset, e,
                "adapter " + CanonicalJson.quote(e.adapter) + " is in partition " + chain.partition));
        }
        // Step 6.
        IdPlace first = firstSeen.get(e.eventId);
        if (!first.adapter().equals(e.adapter) || first.seq() != e.seq) {
            problems.add(Problem.atRecord("event_id_reused", raw.partition, raw.offset, e,
                "event_id " + e.eventId + " was first seen at " + CanonicalJson.quote(first.adapter()) + " seq " + first.seq()));
        }
        // Step 7.
        if (!e.intact) {
            problems.add(Problem.atRecord("hash_mismatch", raw.partition, raw.offset, e,
                "hash " + e.hash + " does not recompute from the event"));
        }
        // Step 8.
        if (e.seq < 1) {
            problems.add(Problem.atRecord("bad_seq", raw.partition, raw.offset, e, "seq " + e.seq + " is below 1"));
            signatureChecks(p);
            return;
        }
        // Step 9.
        if (!replacing && e.seq < chain.highest) {
            problems.add(Problem.atRecord("reordered", raw.partition, raw.offset, e,
                "seq " + e.seq + " comes after seq " + chain.highest));
        }
        Chain.Link link = new Chain.Link(e, raw.partition, raw.offset, order);
        chain.links.put(e.seq, link);
        chain.highest = Math.max(chain.highest, e.seq);
        checkLink(chain, e.seq - 1);
        if (e.seq != Long.MAX_VALUE) checkLink(chain, e.seq);
        // Step 10.
        signatureChecks(p);
    }

    /** Step 9's link check between links[s] (or the start, s = 0) and links[s + 1]. */
    private void checkLink(Chain chain, long s) {
        Chain.Link next = chain.links.get(s + 1);
        if (next == null) return;
        Chain.Link cur = s == 0 ? null : chain.links.get(s);
        if (s != 0 && cur == null) return;
        String expected = s == 0 ? "" : cur.event.hash;
        if (!next.event.prevHash.equals(expected) && next.event.intact && (s == 0 || cur.event.intact)) {
            problems.add(next.problem("broken_link", "prev_hash " + CanonicalJson.quote(next.event.prevHash)
                + " is not the hash of seq " + s + " " + CanonicalJson.quote(expected)));
        }
    }

    /** Step 10: the results computed ahead on the worker thread. */
    private void signatureChecks(Processed p) {
        if (!options.signatures) return;
        if (p.logSignature != null) problems.add(p.logSignature);
        if (p.approvalSignature != null) problems.add(p.approvalSignature);
    }

    /** §10 "After the last record", "Checkpoints", the heads, and "Results". */
    private Result finish() {
        List<String> adapters = new ArrayList<>(chains.keySet());
        adapters.sort(CanonicalJson.CODE_POINT_ORDER);

        for (String adapter : adapters) {
            List<Chain.Link> links = chains.get(adapter).inSeqOrder();
            long prev = 0;
            for (Chain.Link l : links) {
                if (l.event.seq != prev + 1) {
                    problems.add(l.problem("missing_seq", "seq " + l.event.seq + " follows seq " + prev));
                }
                prev = l.event.seq;
            }
            problems.addAll(Lifecycle.judge(links));
        }

        Result r = new Result();
        r.signaturesChecked = options.signatures;
        Checkpoints.Result cps = options.checkpoints;
        if (options.signatures && cps != null) {
            problems.addAll(cps.problems);
            Set<String> truncated = new HashSet<>();
            Set<String> mismatched = new HashSet<>();
            for (Checkpoints.Checkpoint cp : cps.valid) {
                for (Checkpoints.Head h : cp.heads) {
                    Chain chain = chains.get(h.adapter);
                    Chain.Link l = chain == null || h.seq == null ? null : chain.links.get(h.seq);
                    if (l == null) {
                        if (!truncated.add(h.adapter)) continue;
                        Chain.Link top = chain == null ? null : chain.highestLink();
                        String why = cp.name + " has " + CanonicalJson.quote(h.adapter) + " at seq "
                            + (h.seq == null ? "(too large)" : h.seq) + ", the log "
                            + (top == null ? "has no event of it" : "ends at seq " + top.event.seq);
                        problems.add(top == null ? Problem.atCheckpoint("truncated", cp.name, why)
                            : top.problem("truncated", why));
                    } else if (!l.event.hash.equals(h.hash)) {
                        if (!mismatched.add(h.adapter + "\n" + h.seq)) continue;
                        problems.add(l.problem("checkpoint_mismatch", cp.name + " has hash " + h.hash
                            + " at seq " + h.seq + ", the log " + l.event.hash));
                    }
                }
            }
            r.checkpoints = cps.valid.size();
            if (cps.newest() != null) r.latestCheckpoint = cps.newest().number;
        }

        // Placed links in log order, and those above the newest valid checkpoint's heads.
        List<Chain.Link> placed = new ArrayList<>();
        for (Chain c : chains.values()) placed.addAll(c.links.values());
        placed.sort((a, b) -> Long.compare(a.order, b.order));
        Map<String, Long> newestHeads = new HashMap<>();
        Checkpoints.Checkpoint newest = cps == null || !options.signatures ? null : cps.newest();
        if (newest != null) for (Checkpoints.Head h : newest.heads) newestHeads.put(h.adapter, h.anchorSeq());
        List<Chain.Link> unanchored = new ArrayList<>();
        // §10: anchoring is a question only where checkpoints are checked.
        for (Chain.Link l : options.signatures ? placed : List.<Chain.Link>of()) {
            if (l.event.seq > newestHeads.getOrDefault(l.event.adapter, 0L)) unanchored.add(l);
        }

        r.events = events;
        r.duplicates = duplicates;
        r.adapters = adapters;
        r.unanchored = unanchored;
        r.placed = placed;
        r.problems = problems;
        r.ok = problems.isEmpty();
        return r;
    }

    /** Puts the bundle's problems (bundle_damaged) before the rest. */
    static void prepend(Result r, List<Problem> first) {
        if (first.isEmpty()) return;
        List<Problem> all = new ArrayList<>(first);
        all.addAll(r.problems);
        r.problems = all;
        r.ok = false;
    }
}
