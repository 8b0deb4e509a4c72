package adapters.logcheck;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;

/**
 * The released schemas (§2: {@code schemas/<namespace>/<Name>.<version>.avsc}), found by the
 * CRC-64-AVRO fingerprint of their Parsing Canonical Form. Each file is self-contained and
 * parsed with a fresh parser. Immutable once loaded; shared by every thread.
 */
final class Schemas {
    /** The lifecycle namespace (§2); anything else decodes to {@code not_lifecycle}. */
    static final String LIFECYCLE_NAMESPACE = "adapters.lifecycle.v1";

    static final class Entry {
        final Schema schema;
        final long fingerprint;
        final String fullName;
        final String name;
        final String namespace;
        final Path file;
        /** Whether the schema's top-level fields include {@code serving_contract} (§9, v2). */
        final boolean hasServingContract;

        Entry(Schema schema, Path file) {
            this.schema = schema;
            this.fingerprint = SchemaNormalization.parsingFingerprint64(schema);
            this.fullName = schema.getFullName();
            this.name = schema.getName();
            this.namespace = schema.getNamespace() == null ? "" : schema.getNamespace();
            this.file = file;
            this.hasServingContract =
                schema.getType() == Schema.Type.RECORD && schema.getField("serving_contract") != null;
        }

        boolean isLifecycle() {
            return LIFECYCLE_NAMESPACE.equals(namespace);
        }
    }

    private final Map<Long, Entry> byFingerprint;
    final List<Entry> all;

    private Schemas(Map<Long, Entry> byFingerprint, List<Entry> all) {
        this.byFingerprint = byFingerprint;
        this.all = all;
    }

    Entry find(long fingerprint) {
        return byFingerprint.get(fingerprint);
    }

    /** Loads every {@code **.avsc} under dir; a file that does not parse is an I/O error. */
    static Schemas load(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) throw new IOException("no schema folder at " + dir);
        List<Path> files;
        try (Stream<Path> s = Files.walk(dir)) {
            files = s.filter(p -> p.getFileName().toString().endsWith(".avsc") && Files.isRegularFile(p))
                .sorted().collect(java.util.stream.Collectors.toList());
        }
        if (files.isEmpty()) throw new IOException("no .avsc schema under " + dir);
        Map<Long, Entry> map = new HashMap<>();
        List<Entry> all = new ArrayList<>();
        for (Path f : files) {
            Schema schema;
            try {
                schema = new Schema.Parser().parse(Files.readString(f));
            } catch (RuntimeException e) {
                throw new IOException("schema " + f + " does not parse: " + e.getMessage());
            }
            Entry entry = new Entry(schema, f);
            map.put(entry.fingerprint, entry);
            all.add(entry);
        }
        return new Schemas(map, Collections.unmodifiableList(all));
    }
}
