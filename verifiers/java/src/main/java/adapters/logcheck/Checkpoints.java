package adapters.logcheck;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * Checkpoints (§6) and their reporting (§10 "Checkpoints"): read in name order, each either
 * skipped with one problem or used (valid), key rotation through {@code next_key}.
 */
final class Checkpoints {
    static final String SCHEMA = "adapters.log-checkpoint.v1";
    static final String SIGNED_PREFIX = "adapters.log-checkpoint.v1\n";

    /** A head of a checkpoint: {@code {"seq": n, "hash": h}} for one adapter. */
    static final class Head {
        final String adapter;
        /** The seq, or null when it does not fit a long (then no link can be at it). */
        final Long seq;
        final String hash;

        Head(String adapter, Long seq, String hash) {
            this.adapter = adapter;
            this.seq = seq;
            this.hash = hash;
        }

        /** For anchoring: a seq beyond a long anchors every seq. */
        long anchorSeq() {
            return seq == null ? Long.MAX_VALUE : seq;
        }
    }

    /** A valid (used) checkpoint. */
    static final class Checkpoint {
        final String name;
        final BigInteger number;
        /** Heads in adapter name order (code point order). */
        final List<Head> heads;
        final String digest;
        /** The id of the key that signed it. */
        final String keyId;

        Checkpoint(String name, BigInteger number, List<Head> heads, String digest, String keyId) {
            this.name = name;
            this.number = number;
            this.heads = heads;
            this.digest = digest;
            this.keyId = keyId;
        }
    }

    /** The outcome of reading a checkpoint folder. */
    static final class Result {
        final List<Checkpoint> valid = new ArrayList<>();
        final List<Problem> problems = new ArrayList<>();
        /** The log key ring after every rotation (§6: keys stay trusted). */
        Keys.Ring ring;
        /** §10 step 10: the highest head seq of each adapter over every valid checkpoint. */
        final Map<String, Long> anchored = new HashMap<>();
        /**
         * §6 retirement: a retired key's id -> the heads (adapter -> seq) of its retiring
         * checkpoint, the first valid one signed by a key it announced.
         */
        final Map<String, Map<String, Long>> retired = new HashMap<>();
        /** A successor key's id -> the ids of the keys that announced it (next_key). */
        final Map<String, Set<String>> announcedBy = new HashMap<>();

        Checkpoint newest() {
            return valid.isEmpty() ? null : valid.get(valid.size() - 1);
        }
    }

    private Checkpoints() {}

    /**
     * Checks every {@code *.json} in {@code folder} (may be null or absent: no checkpoints).
     *
     * @param log the topic the checkpoints must name (§6 {@code log}) and that names them
     * @param ring the trusted log keys before the first checkpoint
     */
    static Result check(Path folder, String log, Keys.Ring ring, CanonicalJson json) throws IOException {
        Result r = new Result();
        r.ring = new Keys.Ring(ring);
        if (folder == null || !Files.isDirectory(folder)) return r;
        List<Path> files;
        try (Stream<Path> s = Files.list(folder)) {
            files = s.filter(p -> p.getFileName().toString().endsWith(".json") && Files.isRegularFile(p))
                .sorted((a, b) -> CanonicalJson.compareCodePoints(
                    a.getFileName().toString(), b.getFileName().toString()))
                .collect(Collectors.toList());
        }
        Checkpoint previous = null;
        for (Path file : files) {
            String name = "checkpoints/" + log + "/" + file.getFileName();
            Checkpoint cp = checkOne(file, name, log, r, previous, json);
            if (cp != null) {
                r.valid.add(cp);
                previous = cp;
                for (Head h : cp.heads) r.anchored.merge(h.adapter, h.anchorSeq(), Math::max);
                retire(r, cp);
            }
        }
        return r;
    }

    /**
     * §6: "A key retires at the first valid checkpoint signed by a key it announced": every
     * key that announced this checkpoint's signer (and has not retired yet) retires here,
     * with this checkpoint's heads as the line past which its signatures no longer count.
     */
    private static void retire(Result r, Checkpoint cp) {
        for (String announcer : r.announcedBy.getOrDefault(cp.keyId, Set.of())) {
            if (announcer.equals(cp.keyId) || r.retired.containsKey(announcer)) continue;
            Map<String, Long> heads = new HashMap<>();
            for (Head h : cp.heads) heads.put(h.adapter, h.anchorSeq());
            r.retired.put(announcer, heads);
        }
    }

    /** One checkpoint; returns it when used, null when skipped (its problem reported). */
    private static Checkpoint checkOne(Path file, String name, String log, Result r,
                                       Checkpoint previous, CanonicalJson json) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        JsonNode doc;
        try {
            doc = Json.parse(bytes);
        } catch (IOException | RuntimeException e) {
            r.problems.add(Problem.atCheckpoint("checkpoint_unreadable", name, "not JSON: " + oneLine(e.getMessage())));
            return null;
        }
        String unreadable = structureProblem(doc);
        if (unreadable != null) {
            r.problems.add(Problem.atCheckpoint("checkpoint_unreadable", name, unreadable));
            return null;
        }
        JsonNode body = doc.get("checkpoint");
        String bodyLog = body.get("log").textValue();
        if (!bodyLog.equals(log)) {
            r.problems.add(Problem.atCheckpoint("checkpoint_foreign", name,
                "names log " + CanonicalJson.quote(bodyLog) + ", not " + CanonicalJson.quote(log)));
            return null;
        }
        String keyId = body.get("key_id").textValue();
        Keys.Key key = r.ring.get(keyId);
        if (key == null) {
            r.problems.add(Problem.atCheckpoint("checkpoint_unknown_key", name, "key " + keyId + " is not trusted"));
            return null;
        }
        StringBuilder sb = new StringBuilder(SIGNED_PREFIX);
        json.writeJson(sb, body);
        byte[] signed = sb.toString().getBytes(StandardCharsets.UTF_8);
        byte[] sig = Keys.strictBase64(doc.get("signature").textValue());
        if (sig == null || !Keys.verify(key.publicKey, signed, sig)) {
            r.problems.add(Problem.atCheckpoint("checkpoint_signature_invalid", name,
                sig == null ? "signature is not base64" : "signature does not verify with " + keyId));
            return null;
        }

        // Used from here on. A next_key that does not parse is reported, the checkpoint kept.
        JsonNode nextKey = body.get("next_key");
        if (nextKey != null && !nextKey.isNull()) {
            try {
                Keys.Key next = Keys.parsePem(nextKey.textValue(), name);
                r.ring.add(next);
                r.announcedBy.computeIfAbsent(next.id, k -> new HashSet<>()).add(keyId);
            } catch (IllegalArgumentException e) {
                r.problems.add(Problem.atCheckpoint("checkpoint_unreadable", name, "next_key: " + e.getMessage()));
            }
        }
        BigInteger number = body.get("number").bigIntegerValue();
        BigInteger expected = previous == null ? BigInteger.ONE : previous.number.add(BigInteger.ONE);
        if (!number.equals(expected)) {
            r.problems.add(Problem.atCheckpoint("checkpoint_missing", name,
                "number " + number + " follows " + (previous == null ? "no checkpoint" : "number " + previous.number)
                    + ": expected " + expected));
        }
        String prev = body.get("previous").textValue();
        String expectedPrev = previous == null ? "" : previous.digest;
        // §10: a chain is judged broken only where the numbers follow; a gap is named once.
        if (number.equals(expected) && !prev.equals(expectedPrev)) {
            r.problems.add(Problem.atCheckpoint("checkpoint_chain_broken", name,
                "previous is " + CanonicalJson.quote(prev) + ", expected " + CanonicalJson.quote(expectedPrev)));
        }
        return new Checkpoint(name, number, heads(body.get("heads")), digest(signed), keyId);
    }

    /**
     * §10's {@code checkpoint_unreadable}: no checkpoint or signature, a schema other than
     * §6's, a missing or mistyped field. Returns why, or null when the shape is right.
     * (A bad next_key is judged later: it does not skip the checkpoint.)
     */
    static String structureProblem(JsonNode doc) {
        if (!doc.isObject()) return "not a JSON object";
        JsonNode body = doc.get("checkpoint");
        if (body == null || !body.isObject()) return "no checkpoint object";
        JsonNode sig = doc.get("signature");
        if (sig == null || !sig.isTextual()) return "no signature string";
        JsonNode schema = body.get("schema");
        if (schema == null || !schema.isTextual()) return "no schema string";
        if (!SCHEMA.equals(schema.textValue())) return "schema is " + CanonicalJson.quote(schema.textValue());
        for (String f : new String[] {"log", "issued_at", "previous", "key_id"}) {
            JsonNode v = body.get(f);
            if (v == null || !v.isTextual()) return "field " + f + " is missing or not a string";
        }
        if (!Json.isInteger(body.get("number"))) return "field number is missing or not an integer";
        JsonNode heads = body.get("heads");
        if (heads == null || !heads.isObject()) return "field heads is missing or not an object";
        for (Map.Entry<String, JsonNode> h : heads.properties()) {
            JsonNode v = h.getValue();
            if (!v.isObject() || !Json.isInteger(v.get("seq")) || v.get("hash") == null || !v.get("hash").isTextual()) {
                return "head " + CanonicalJson.quote(h.getKey()) + " is not {\"seq\": integer, \"hash\": string}";
            }
        }
        JsonNode nextKey = body.get("next_key");
        if (nextKey != null && !nextKey.isNull() && !nextKey.isTextual()) return "field next_key is not a string";
        return null;
    }

    private static List<Head> heads(JsonNode heads) {
        TreeMap<String, Head> sorted = new TreeMap<>(CanonicalJson.CODE_POINT_ORDER);
        for (Map.Entry<String, JsonNode> h : heads.properties()) {
            JsonNode seq = h.getValue().get("seq");
            Long s = seq.canConvertToLong() ? seq.longValue() : null;
            sorted.put(h.getKey(), new Head(h.getKey(), s, h.getValue().get("hash").textValue()));
        }
        return Collections.unmodifiableList(new ArrayList<>(sorted.values()));
    }

    /** §6: {@code "sha256:" + hex(SHA-256(the signed bytes))}. */
    static String digest(byte[] signed) {
        try {
            return "sha256:" + Hex.of(MessageDigest.getInstance("SHA-256").digest(signed));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static String oneLine(String s) {
        return s == null ? "" : s.replaceAll("\\s+", " ").trim();
    }
}
