package adapters.logcheck;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/** The auditor's bundle (§11): its index, keys, schemas, checkpoints and records. */
final class Bundle {
    static final String FORMAT = "adapters.audit-bundle.v1";

    final Path dir;
    final String topic;
    private final JsonNode files;

    private Bundle(Path dir, String topic, JsonNode files) {
        this.dir = dir;
        this.topic = topic;
        this.files = files;
    }

    /** Opens a bundle folder; a missing or unreadable bundle.json is an I/O error. */
    static Bundle open(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) throw new IOException("no bundle folder at " + dir);
        Path index = dir.resolve("bundle.json");
        if (!Files.isRegularFile(index)) throw new IOException(dir + " has no bundle.json");
        JsonNode doc;
        try {
            doc = Json.parse(Files.readAllBytes(index));
        } catch (IOException | RuntimeException e) {
            throw new IOException("bundle.json is not JSON: " + Checkpoints.oneLine(e.getMessage()));
        }
        if (!doc.isObject() || !FORMAT.equals(doc.path("format").textValue())) {
            throw new IOException("bundle.json is not an " + FORMAT + " index");
        }
        JsonNode topic = doc.get("topic");
        if (topic == null || !topic.isTextual()) throw new IOException("bundle.json names no topic");
        JsonNode files = doc.get("files");
        if (files == null || !files.isObject()) throw new IOException("bundle.json has no files object");
        return new Bundle(dir, topic.textValue(), files);
    }

    /**
     * §11: every file but bundle.json must be listed with its digest. A listed file that is
     * missing, differs or lies outside the folder, and a file that is not listed, is
     * {@code bundle_damaged} at its path. Problems in path order.
     */
    List<Problem> checkFiles() throws IOException {
        TreeMap<String, String> damaged = new TreeMap<>(CanonicalJson.CODE_POINT_ORDER);
        TreeSet<String> listed = new TreeSet<>();
        Path root = dir.toAbsolutePath().normalize();
        for (Map.Entry<String, JsonNode> f : files.properties()) {
            String rel = f.getKey();
            listed.add(rel);
            Path p = root.resolve(rel).normalize();
            if (rel.isEmpty() || rel.startsWith("/") || !p.startsWith(root) || p.equals(root)) {
                damaged.put(rel, "path lies outside the bundle");
                continue;
            }
            if (!Files.isRegularFile(p)) {
                damaged.put(rel, "listed in bundle.json but missing");
                continue;
            }
            String want = f.getValue().isTextual() ? f.getValue().textValue() : null;
            String have = "sha256:" + sha256(p);
            if (!have.equals(want)) {
                damaged.put(rel, "digest " + have + " is not bundle.json's " + (want == null ? "(none)" : want));
            }
        }
        List<String> present;
        try (Stream<Path> s = Files.walk(root)) {
            present = s.filter(Files::isRegularFile)
                .map(p -> root.relativize(p).toString().replace('\\', '/'))
                .filter(rel -> !rel.equals("bundle.json"))
                .collect(Collectors.toList());
        }
        for (String rel : present) {
            if (!listed.contains(rel)) damaged.putIfAbsent(rel, "not listed in bundle.json");
        }
        List<Problem> out = new ArrayList<>();
        for (Map.Entry<String, String> d : damaged.entrySet()) {
            out.add(Problem.atFile("bundle_damaged", d.getKey(), d.getValue()));
        }
        return out;
    }

    private static String sha256(Path p) throws IOException {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        byte[] buf = new byte[1 << 20];
        try (InputStream in = Files.newInputStream(p)) {
            for (int n; (n = in.read(buf)) > 0; ) md.update(buf, 0, n);
        }
        return Hex.of(md.digest());
    }

    /** {@code keys/*.pem}: the trusted log keys. */
    List<Keys.Key> logKeys() throws IOException {
        return pems(dir.resolve("keys"));
    }

    /** {@code keys/approval/*.pem}: the approval keys. */
    List<Keys.Key> approvalKeys() throws IOException {
        return pems(dir.resolve("keys").resolve("approval"));
    }

    private static List<Keys.Key> pems(Path folder) throws IOException {
        List<Keys.Key> out = new ArrayList<>();
        if (!Files.isDirectory(folder)) return out;
        List<Path> files;
        try (Stream<Path> s = Files.list(folder)) {
            files = s.filter(p -> p.getFileName().toString().endsWith(".pem") && Files.isRegularFile(p))
                .sorted().collect(Collectors.toList());
        }
        for (Path f : files) out.add(Keys.readPem(f));
        return out;
    }

    Path schemas() {
        return dir.resolve("schemas");
    }

    Path checkpoints(String log) {
        return dir.resolve("checkpoints").resolve(log);
    }

    /** records.jsonl, in the order written (§11: log order). */
    RecordSource records() throws IOException {
        Path file = dir.resolve("records.jsonl");
        return new Records(Files.isRegularFile(file) ? Files.newBufferedReader(file, StandardCharsets.UTF_8) : null);
    }

    /** A line of records.jsonl and its number (for messages). */
    private static final class Line {
        final long number;
        final String text;

        Line(long number, String text) {
            this.number = number;
            this.text = text;
        }
    }

    private static final class Records implements RecordSource {
        private final BufferedReader in;
        private long lineNumber;

        Records(BufferedReader in) {
            this.in = in;
        }

        @Override
        public List<?> nextBatch() throws IOException {
            if (in == null) return null;
            List<Line> batch = new ArrayList<>(Verifier.BATCH);
            String text;
            while (batch.size() < Verifier.BATCH && (text = in.readLine()) != null) {
                lineNumber++;
                if (!text.isBlank()) batch.add(new Line(lineNumber, text));
            }
            return batch.isEmpty() ? null : batch;
        }

        /**
         * {"partition", "offset", "timestamp_ms", "key" and "value" (base64 or null),
         * "headers": [[name, base64], ...]}. A line of another shape is an I/O error.
         * Read with Jackson's streaming parser: this is the hot path of a bundle.
         */
        @Override
        public RawRecord materialize(Object item) throws IOException {
            Line line = (Line) item;
            try (JsonParser p = Json.MAPPER.getFactory().createParser(line.text)) {
                if (p.nextToken() != JsonToken.START_OBJECT) throw new IOException("not a JSON object");
                Integer partition = null;
                Long offset = null;
                byte[] key = null, value = null, sig = null, keyId = null;
                while (p.nextToken() == JsonToken.FIELD_NAME) {
                    String field = p.currentName();
                    JsonToken t = p.nextToken();
                    switch (field) {
                        case "partition":
                            if (t != JsonToken.VALUE_NUMBER_INT || p.getNumberType() != JsonParser.NumberType.INT) {
                                throw new IOException("partition is not an integer");
                            }
                            partition = p.getIntValue();
                            break;
                        case "offset":
                            if (t != JsonToken.VALUE_NUMBER_INT || p.getNumberType() == JsonParser.NumberType.BIG_INTEGER) {
                                throw new IOException("offset is not an integer");
                            }
                            offset = p.getLongValue();
                            break;
                        case "key":
                            key = bytes(p, t, "key");
                            break;
                        case "value":
                            value = bytes(p, t, "value");
                            break;
                        case "headers":
                            if (t == JsonToken.VALUE_NULL) break;
                            if (t != JsonToken.START_ARRAY) throw new IOException("headers is not a list");
                            while (p.nextToken() == JsonToken.START_ARRAY) {
                                if (p.nextToken() != JsonToken.VALUE_STRING) throw new IOException("a header has no name");
                                String name = p.getText();
                                byte[] v = bytes(p, p.nextToken(), "header " + name);
                                if (p.nextToken() != JsonToken.END_ARRAY) throw new IOException("a header is not [name, base64]");
                                // The last header of a name wins, as Kafka's lastHeader.
                                if (name.equals("log_signature")) sig = v;
                                else if (name.equals("log_key_id")) keyId = v;
                            }
                            if (p.currentToken() != JsonToken.END_ARRAY) throw new IOException("a header is not [name, base64]");
                            break;
                        default:
                            p.skipChildren();
                    }
                }
                if (p.currentToken() != JsonToken.END_OBJECT || p.nextToken() != null) {
                    throw new IOException("not one JSON object");
                }
                if (partition == null || offset == null) throw new IOException("no partition or offset");
                return new RawRecord(partition, offset, key, value, sig, keyId);
            } catch (IOException | RuntimeException e) {
                throw new IOException("records.jsonl line " + line.number + ": " + Checkpoints.oneLine(e.getMessage()));
            }
        }

        private static byte[] bytes(JsonParser p, JsonToken t, String what) throws IOException {
            if (t == JsonToken.VALUE_NULL) return null;
            if (t != JsonToken.VALUE_STRING) throw new IOException(what + " is not base64 text");
            try {
                return Base64.getDecoder().decode(p.getText());
            } catch (IllegalArgumentException e) {
                throw new IOException(what + " is not base64");
            }
        }

        @Override
        public void close() throws IOException {
            if (in != null) in.close();
        }
    }
}
