package adapters.logcheck;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.io.Decoder;
import org.apache.avro.util.Utf8;

/**
 * A GenericDatumReader for one writer schema (no resolution: §4 hashes the record as its
 * writer wrote it) that returns Java Strings and rejects malformed UTF-8: a string that is
 * not UTF-8 does not decode (§10 step 1, {@code undecodable}); Avro's own reader would
 * silently substitute U+FFFD. Not thread-safe.
 */
final class AvroReader extends GenericDatumReader<Object> {
    private final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
        .onMalformedInput(CodingErrorAction.REPORT)
        .onUnmappableCharacter(CodingErrorAction.REPORT);
    private Utf8 scratch = new Utf8();

    AvroReader(Schema writer) {
        // Avro's "fast reader" would bypass the string hooks below: switch it off.
        super(writer, writer, plainData());
    }

    private static GenericData plainData() {
        GenericData data = new GenericData();
        data.setFastReaderEnabled(false);
        return data;
    }

    @Override
    protected Object readString(Object old, Schema expected, Decoder in) throws IOException {
        return readStrictString(in);
    }

    @Override
    protected Object readString(Object old, Decoder in) throws IOException {
        return readStrictString(in);
    }

    @Override
    protected Object readMapKey(Object old, Schema expected, Decoder in) throws IOException {
        return readStrictString(in);
    }

    private String readStrictString(Decoder in) throws IOException {
        scratch = in.readString(scratch);
        byte[] b = scratch.getBytes();
        int n = scratch.getByteLength();
        boolean ascii = true;
        for (int i = 0; i < n; i++) {
            if (b[i] < 0) { ascii = false; break; }
        }
        if (ascii) return new String(b, 0, n, StandardCharsets.ISO_8859_1);
        try {
            CharBuffer cb = utf8.reset().decode(ByteBuffer.wrap(b, 0, n));
            return cb.toString();
        } catch (CharacterCodingException e) {
            throw new IOException("a string is not UTF-8");
        }
    }
}
