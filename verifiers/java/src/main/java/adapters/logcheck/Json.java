package adapters.logcheck;

import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;

/** Jackson, set up to read JSON the way Python's {@code json.loads} does. */
final class Json {
    private Json() {}

    /**
     * Like json.loads: NaN and ±Infinity are accepted, trailing data is an error, a repeated
     * key keeps its last value, floats are doubles.
     */
    static final ObjectMapper MAPPER = JsonMapper.builder()
        .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
        .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
        .build();

    static JsonNode parse(byte[] bytes) throws IOException {
        JsonNode n = MAPPER.readTree(bytes);
        if (n == null || n.isMissingNode()) throw new IOException("empty document");
        return n;
    }

    static JsonNode parse(String text) throws IOException {
        JsonNode n = MAPPER.readTree(text);
        if (n == null || n.isMissingNode()) throw new IOException("empty document");
        return n;
    }

    /** A JSON integer (not a float, not a boolean). */
    static boolean isInteger(JsonNode n) {
        return n != null && n.isIntegralNumber();
    }
}
