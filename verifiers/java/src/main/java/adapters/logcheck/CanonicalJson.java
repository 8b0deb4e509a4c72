package adapters.logcheck;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericEnumSymbol;
import org.apache.avro.generic.GenericFixed;
import org.apache.avro.generic.IndexedRecord;

/**
 * §4's JSON: Python's {@code json.dumps(value, sort_keys=True, separators=(",", ":"),
 * ensure_ascii=True)}, written into a caller's StringBuilder. Works on decoded Avro values
 * (records, maps, arrays, unions as their value) and on Jackson trees (checkpoint bodies).
 *
 * <p>Not thread-safe (it caches each record schema's field order); use one per thread.
 */
final class CanonicalJson {
    private static final char[] HEX = "0123456789abcdef".toCharArray();

    /** Object keys sort by code point (Python's str order), not by UTF-16 unit. */
    static final Comparator<String> CODE_POINT_ORDER = CanonicalJson::compareCodePoints;

    /** Per record schema, its field positions sorted by field name. */
    private final Map<Schema, int[]> fieldOrder = new IdentityHashMap<>();

    // ---- Avro values -------------------------------------------------------------------

    /**
     * Writes a top-level event: the record with its {@code envelope} object lacking the
     * {@code hash} field (§4: "The envelope object is present with every field except hash").
     */
    void writeEvent(StringBuilder out, IndexedRecord record) {
        writeRecord(out, record, true);
    }

    void writeAvro(StringBuilder out, Object v) {
        if (v == null) {
            out.append("null");
        } else if (v instanceof CharSequence) {
            writeString(out, v.toString());
        } else if (v instanceof Long || v instanceof Integer) {
            out.append(((Number) v).longValue());
        } else if (v instanceof Double || v instanceof Float) {
            // An Avro float is widened to the double of the same value, as Python reads it.
            FloatRepr.append(out, ((Number) v).doubleValue());
        } else if (v instanceof Boolean) {
            out.append(((Boolean) v) ? "true" : "false");
        } else if (v instanceof IndexedRecord) {
            writeRecord(out, (IndexedRecord) v, false);
        } else if (v instanceof Map) {
            writeMap(out, (Map<?, ?>) v);
        } else if (v instanceof Collection) {
            out.append('[');
            boolean first = true;
            for (Object item : (Collection<?>) v) {
                if (!first) out.append(',');
                first = false;
                writeAvro(out, item);
            }
            out.append(']');
        } else if (v instanceof ByteBuffer) {
            ByteBuffer b = ((ByteBuffer) v).duplicate();
            out.append('"');
            while (b.hasRemaining()) appendHexByte(out, b.get());
            out.append('"');
        } else if (v instanceof GenericFixed) {
            out.append('"');
            for (byte x : ((GenericFixed) v).bytes()) appendHexByte(out, x);
            out.append('"');
        } else if (v instanceof GenericEnumSymbol) {
            writeString(out, v.toString());
        } else {
            throw new IllegalArgumentException("no JSON for " + v.getClass().getName());
        }
    }

    private void writeRecord(StringBuilder out, IndexedRecord rec, boolean topLevel) {
        Schema schema = rec.getSchema();
        List<Schema.Field> fields = schema.getFields();
        int[] order = fieldOrder.computeIfAbsent(schema, CanonicalJson::sortedFieldPositions);
        out.append('{');
        boolean first = true;
        for (int pos : order) {
            Schema.Field f = fields.get(pos);
            if (!first) out.append(',');
            first = false;
            writeString(out, f.name());
            out.append(':');
            Object value = rec.get(pos);
            if (topLevel && f.name().equals("envelope") && value instanceof IndexedRecord) {
                writeRecordWithout(out, (IndexedRecord) value, "hash");
            } else {
                writeAvro(out, value);
            }
        }
        out.append('}');
    }

    private void writeRecordWithout(StringBuilder out, IndexedRecord rec, String skipped) {
        Schema schema = rec.getSchema();
        List<Schema.Field> fields = schema.getFields();
        int[] order = fieldOrder.computeIfAbsent(schema, CanonicalJson::sortedFieldPositions);
        out.append('{');
        boolean first = true;
        for (int pos : order) {
            Schema.Field f = fields.get(pos);
            if (f.name().equals(skipped)) continue;
            if (!first) out.append(',');
            first = false;
            writeString(out, f.name());
            out.append(':');
            writeAvro(out, rec.get(pos));
        }
        out.append('}');
    }

    private static int[] sortedFieldPositions(Schema schema) {
        List<Schema.Field> fields = new ArrayList<>(schema.getFields());
        fields.sort((a, b) -> compareCodePoints(a.name(), b.name()));
        int[] order = new int[fields.size()];
        for (int i = 0; i < order.length; i++) order[i] = fields.get(i).pos();
        return order;
    }

    private void writeMap(StringBuilder out, Map<?, ?> map) {
        List<Map.Entry<?, ?>> entries = new ArrayList<>(map.entrySet());
        entries.sort((x, y) -> compareCodePoints(x.getKey().toString(), y.getKey().toString()));
        out.append('{');
        boolean first = true;
        for (Map.Entry<?, ?> e : entries) {
            if (!first) out.append(',');
            first = false;
            writeString(out, e.getKey().toString());
            out.append(':');
            writeAvro(out, e.getValue());
        }
        out.append('}');
    }

    // ---- Jackson trees (checkpoint bodies) ----------------------------------------------

    /**
     * Writes a parsed JSON value as Python would re-dump what {@code json.loads} gave:
     * integers in decimal, other numbers as doubles (§4's float spelling).
     */
    void writeJson(StringBuilder out, JsonNode n) {
        switch (n.getNodeType()) {
            case NULL:
                out.append("null");
                break;
            case BOOLEAN:
                out.append(n.booleanValue() ? "true" : "false");
                break;
            case STRING:
                writeString(out, n.textValue());
                break;
            case NUMBER:
                if (n.isIntegralNumber()) out.append(n.bigIntegerValue());
                else FloatRepr.append(out, n.doubleValue());
                break;
            case ARRAY: {
                out.append('[');
                for (int i = 0; i < n.size(); i++) {
                    if (i > 0) out.append(',');
                    writeJson(out, n.get(i));
                }
                out.append(']');
                break;
            }
            case OBJECT: {
                List<String> keys = new ArrayList<>(n.size());
                for (Iterator<String> it = n.fieldNames(); it.hasNext(); ) keys.add(it.next());
                keys.sort(CODE_POINT_ORDER);
                out.append('{');
                boolean first = true;
                for (String k : keys) {
                    if (!first) out.append(',');
                    first = false;
                    writeString(out, k);
                    out.append(':');
                    writeJson(out, n.get(k));
                }
                out.append('}');
                break;
            }
            default:
                throw new IllegalArgumentException("no JSON for node type " + n.getNodeType());
        }
    }

    // ---- strings --------------------------------------------------------------------------

    /**
     * §4's string escapes (ensure_ascii): {@code \" \\ \b \t \n \f \r}; every other char
     * below U+0020 or above U+007E as {@code \}{@code uXXXX} in lowercase hex; a character
     * above U+FFFF is already its surrogate pair in a Java String, each unit so written.
     */
    static void writeString(StringBuilder out, String s) {
        out.append('"');
        int n = s.length();
        int run = 0; // start of the pending run of characters that need no escape
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            if (c >= 0x20 && c <= 0x7e && c != '"' && c != '\\') continue;
            out.append(s, run, i);
            run = i + 1;
            switch (c) {
                case '"': out.append("\\\""); break;
                case '\\': out.append("\\\\"); break;
                case '\b': out.append("\\b"); break;
                case '\t': out.append("\\t"); break;
                case '\n': out.append("\\n"); break;
                case '\f': out.append("\\f"); break;
                case '\r': out.append("\\r"); break;
                default:
                    out.append("\\u")
                        .append(HEX[(c >> 12) & 0xf]).append(HEX[(c >> 8) & 0xf])
                        .append(HEX[(c >> 4) & 0xf]).append(HEX[c & 0xf]);
            }
        }
        out.append(s, run, n);
        out.append('"');
    }

    static String quote(String s) {
        StringBuilder sb = new StringBuilder(s.length() + 2);
        writeString(sb, s);
        return sb.toString();
    }

    private static void appendHexByte(StringBuilder out, byte b) {
        out.append(HEX[(b >> 4) & 0xf]).append(HEX[b & 0xf]);
    }

    /**
     * Compares by Unicode code point. UTF-16 order differs from code point order only when a
     * surrogate meets a unit in U+E000..U+FFFF; the usual fix-up moves surrogates above them.
     */
    static int compareCodePoints(String a, String b) {
        int n = Math.min(a.length(), b.length());
        for (int i = 0; i < n; i++) {
            char x = a.charAt(i), y = b.charAt(i);
            if (x != y) {
                if (x >= 0xd800 && y >= 0xd800) {
                    x = fixup(x);
                    y = fixup(y);
                }
                return x - y;
            }
        }
        return a.length() - b.length();
    }

    private static char fixup(char c) {
        return (char) (c >= 0xe000 ? c - 0x800 : c + 0x2000);
    }
}
