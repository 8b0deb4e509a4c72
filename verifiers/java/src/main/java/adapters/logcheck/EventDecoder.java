package adapters.logcheck;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.generic.IndexedRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;

/**
 * Decodes record values (§2) and computes canonical bytes and hashes (§4). One per thread:
 * it reuses a reader per writer schema, one BinaryDecoder, one StringBuilder, one digest.
 */
final class EventDecoder {
    enum Status { OK, UNDECODABLE, NOT_LIFECYCLE }

    /** The outcome of decoding one value. */
    static final class Decoded {
        Status status;
        String message;
        Schemas.Entry schema;
        /** The decoded record; only valid until this decoder's next call. */
        GenericRecord record;
        Event event;
    }

    private final Schemas schemas;
    private final Map<Long, AvroReader> readers = new HashMap<>();
    private final CanonicalJson json = new CanonicalJson();
    private final StringBuilder sb = new StringBuilder(2048);
    private final MessageDigest sha256;
    private BinaryDecoder decoder;
    private byte[] buf = new byte[4096];

    EventDecoder(Schemas schemas) {
        this.schemas = schemas;
        try {
            this.sha256 = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    CanonicalJson json() {
        return json;
    }

    /** §10 step 1, then the event's fields and whether it is intact (step 2). */
    Decoded decode(byte[] value) {
        Decoded d = new Decoded();
        if (value == null) return fail(d, Status.UNDECODABLE, "no value (a tombstone)");
        if (value.length < 10 || (value[0] & 0xff) != 0xC3 || (value[1] & 0xff) != 0x01) {
            return fail(d, Status.UNDECODABLE, "value lacks the C3 01 single-object marker");
        }
        long fp = 0;
        for (int i = 9; i >= 2; i--) fp = (fp << 8) | (value[i] & 0xffL); // little-endian (§2)
        Schemas.Entry entry = schemas.find(fp);
        if (entry == null) {
            return fail(d, Status.UNDECODABLE, String.format("unknown schema fingerprint %016x", fp));
        }
        d.schema = entry;
        Object datum;
        try {
            AvroReader reader = readers.computeIfAbsent(fp, k -> new AvroReader(entry.schema));
            decoder = DecoderFactory.get().binaryDecoder(value, 10, value.length - 10, decoder);
            datum = reader.read(null, decoder);
            // The body is exactly one datum: bytes left over mean it is not this schema's.
            if (!decoder.isEnd()) {
                return fail(d, Status.UNDECODABLE,
                    "body does not decode as " + entry.fullName + ": bytes left after the record");
            }
        } catch (Exception | StackOverflowError e) {
            return fail(d, Status.UNDECODABLE, "body does not decode as " + entry.fullName + ": " + e);
        }
        if (!entry.isLifecycle()) {
            return fail(d, Status.NOT_LIFECYCLE, "schema " + entry.fullName + " is not in " + Schemas.LIFECYCLE_NAMESPACE);
        }
        if (!(datum instanceof GenericRecord)) {
            return fail(d, Status.UNDECODABLE, entry.fullName + " is not a record");
        }
        d.record = (GenericRecord) datum;
        try {
            d.event = extract(entry, d.record);
        } catch (RuntimeException e) {
            return fail(d, Status.UNDECODABLE, entry.fullName + " has no usable envelope: " + e.getMessage());
        }
        d.event.intact = hashOf(d.event.prevHash, canonical(entry, d.record)).equals(d.event.hash);
        d.status = Status.OK;
        return d;
    }

    private static Decoded fail(Decoded d, Status s, String message) {
        d.status = s;
        d.message = message;
        return d;
    }

    /** §4: {@code full_name + "\n" + JSON(record without envelope.hash)}. */
    String canonical(Schemas.Entry entry, IndexedRecord record) {
        sb.setLength(0);
        sb.append(entry.fullName).append('\n');
        json.writeEvent(sb, record);
        return sb.toString();
    }

    /** §4: {@code hex(SHA-256(prev_hash + "\n" + canonical))}. */
    String hashOf(String prevHash, String canonical) {
        sha256.reset();
        update(prevHash);
        update("\n");
        update(canonical);
        return Hex.of(sha256.digest());
    }

    String sha256Hex(byte[] data) {
        sha256.reset();
        return Hex.of(sha256.digest(data));
    }

    /** Feeds a string's UTF-8 bytes to the digest, without allocating for ASCII text. */
    private void update(String s) {
        int n = s.length();
        if (buf.length < n) buf = new byte[Math.max(n, buf.length * 2)];
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            if (c >= 0x80) {
                sha256.update(buf, 0, i);
                sha256.update(s.substring(i).getBytes(StandardCharsets.UTF_8));
                return;
            }
            buf[i] = (byte) c;
        }
        sha256.update(buf, 0, n);
    }

    // ---- fields ---------------------------------------------------------------------------

    private static Event extract(Schemas.Entry entry, GenericRecord r) {
        GenericRecord env = (GenericRecord) field(r, "envelope");
        Event e = new Event();
        e.type = entry.name;
        e.fullName = entry.fullName;
        e.eventId = str(env, "event_id");
        e.adapter = str(env, "adapter");
        e.revision = str(env, "revision");
        e.environment = str(env, "environment");
        e.seq = lng(env, "seq");
        e.prevHash = str(env, "prev_hash");
        e.hash = str(env, "hash");
        e.occurredAt = lng(env, "occurred_at");
        e.actorPrincipal = str((GenericRecord) field(env, "actor"), "principal");
        switch (e.type) {
            case "CanaryStarted":
            case "CanaryExpanded":
                e.trafficPercent = lng(r, "traffic_percent");
                e.tenants = strings(field(r, "tenants"));
                break;
            case "RevisionApproved":
            case "RevisionDenied": {
                Event.Approval a = new Event.Approval();
                boolean approved = e.type.equals("RevisionApproved");
                a.decision = approved ? "approved" : "denied";
                a.manifestDigest = str(r, "manifest_digest");
                a.reportDigest = str(r, "report_digest");
                a.comment = str(r, "comment");
                // §9: "a denial's approvers are its actor" (its principal, a one-name list).
                a.approvers = approved ? strings(field(r, "approvers")) : List.of(e.actorPrincipal);
                a.signature = str(r, "signature");
                a.keyId = str(r, "key_id");
                a.servingContract = entry.hasServingContract ? str(r, "serving_contract") : null;
                e.approval = a;
                break;
            }
            default:
                break;
        }
        return e;
    }

    private static Object field(GenericRecord r, String name) {
        if (r.getSchema().getField(name) == null) {
            throw new IllegalArgumentException("no field " + name + " in " + r.getSchema().getFullName());
        }
        return r.get(name);
    }

    private static String str(GenericRecord r, String name) {
        Object v = field(r, name);
        if (!(v instanceof CharSequence)) throw new IllegalArgumentException(name + " is not a string");
        return v.toString();
    }

    private static long lng(GenericRecord r, String name) {
        Object v = field(r, name);
        if (!(v instanceof Long) && !(v instanceof Integer)) {
            throw new IllegalArgumentException(name + " is not an integer");
        }
        return ((Number) v).longValue();
    }

    private static List<String> strings(Object v) {
        if (!(v instanceof List)) throw new IllegalArgumentException("not a list of strings");
        List<?> in = (List<?>) v;
        List<String> out = new ArrayList<>(in.size());
        for (Object o : in) {
            if (!(o instanceof CharSequence)) throw new IllegalArgumentException("not a list of strings");
            out.add(o.toString());
        }
        return out;
    }
}
