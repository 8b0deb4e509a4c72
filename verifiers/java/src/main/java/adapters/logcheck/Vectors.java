package adapters.logcheck;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** {@code logcheck vectors FILE}: reproduces every value of the test vectors file. */
final class Vectors {
    private final PrintStream out;
    private int ok;
    private int failed;

    private Vectors(PrintStream out) {
        this.out = out;
    }

    /** Returns the exit status: 0 when every check passes, 1 otherwise. */
    static int run(Path file, Schemas schemas, PrintStream out) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        JsonNode v;
        try {
            v = Json.parse(bytes);
        } catch (IOException | RuntimeException e) {
            throw new IOException(file + " is not JSON: " + Checkpoints.oneLine(e.getMessage()));
        }
        Vectors c = new Vectors(out);
        c.check(v, schemas);
        out.printf("%s: %d checks, %d failed%n", c.failed == 0 ? "OK" : "FAILED", c.ok + c.failed, c.failed);
        return c.failed == 0 ? 0 : 1;
    }

    private void result(String what, boolean passed, String detail) {
        if (passed) {
            ok++;
            out.println("ok      " + what);
        } else {
            failed++;
            out.println("FAILED  " + what + (detail == null ? "" : ": " + detail));
        }
    }

    private void same(String what, String want, String have) {
        result(what, want != null && want.equals(have),
            "expected " + CanonicalJson.quote(String.valueOf(want)) + ", got " + CanonicalJson.quote(String.valueOf(have)));
    }

    private void check(JsonNode v, Schemas schemas) {
        EventDecoder decoder = new EventDecoder(schemas);

        Keys.Key logKey = key("log_public_key_pem", v);
        if (logKey != null) same("log key id", text(v, "log_key_id"), logKey.id);
        Keys.Key approvalKey = key("approval_public_key_pem", v);
        if (approvalKey != null) same("approval key id", text(v, "approval_key_id"), approvalKey.id);

        Event approved = null;
        int i = 0;
        for (JsonNode ev : v.path("events")) {
            String tag = "event " + (++i) + " ";
            byte[] value = Hex.parse(text(ev, "value_hex"));
            EventDecoder.Decoded d = decoder.decode(value);
            if (d.status != EventDecoder.Status.OK) {
                result(tag + "decodes", false, d.status + ": " + d.message);
                continue;
            }
            Event e = d.event;
            tag += e.type + " ";
            result(tag + "decodes with its writer schema", true, null);
            same(tag + "writer schema", text(ev, "writer_schema"), d.schema.fullName);
            String canonical = decoder.canonical(d.schema, d.record);
            same(tag + "canonical_bytes", text(ev, "canonical_bytes"), canonical);
            same(tag + "prev_hash", text(ev, "prev_hash"), e.prevHash);
            same(tag + "hash", text(ev, "hash"), decoder.hashOf(e.prevHash, canonical));
            result(tag + "envelope hash recomputes (intact)", e.intact, null);
            same(tag + "key is the adapter", text(ev, "key"), e.adapter);
            String statement = Signatures.eventStatement(e);
            same(tag + "signature statement", text(ev, "signature_statement"), statement);
            JsonNode h = ev.path("headers");
            if (logKey != null) {
                same(tag + "log_key_id header", logKey.id, h.path("log_key_id").textValue());
                byte[] sig = Keys.strictBase64(h.path("log_signature").textValue());
                result(tag + "log_signature verifies", sig != null
                    && Keys.verify(logKey.publicKey, statement.getBytes(StandardCharsets.UTF_8), sig), null);
            }
            if (e.type.equals("RevisionApproved")) approved = e;
        }

        JsonNode cp = v.path("checkpoint");
        if (!cp.isMissingNode()) {
            JsonNode doc = cp.path("document");
            String problem = Checkpoints.structureProblem(doc);
            result("checkpoint document is well formed", problem == null, problem);
            if (problem == null) {
                StringBuilder sb = new StringBuilder(Checkpoints.SIGNED_PREFIX);
                decoder.json().writeJson(sb, doc.get("checkpoint"));
                String signed = sb.toString();
                same("checkpoint signed_bytes", text(cp, "signed_bytes"), signed);
                byte[] signedBytes = signed.getBytes(StandardCharsets.UTF_8);
                same("checkpoint digest", text(cp, "digest"), Checkpoints.digest(signedBytes));
                same("checkpoint signature_bytes_b64", text(cp, "signature_bytes_b64"), text(doc, "signature"));
                if (logKey != null) {
                    same("checkpoint key_id", logKey.id, doc.get("checkpoint").path("key_id").textValue());
                    byte[] sig = Keys.strictBase64(text(doc, "signature"));
                    result("checkpoint signature verifies", sig != null
                        && Keys.verify(logKey.publicKey, signedBytes, sig), null);
                }
            }
        }

        if (v.has("approval_claim")) {
            if (approved == null) {
                result("approval claim: a RevisionApproved event among the vectors", false, null);
            } else {
                String claim = Signatures.approvalClaim(approved);
                same("approval claim", text(v, "approval_claim"), claim);
                same("approval signature is the event's", text(v, "approval_signature"), approved.approval.signature);
                if (approvalKey != null) {
                    same("approval event key_id", approvalKey.id, approved.approval.keyId);
                    byte[] sig = Keys.strictBase64(approved.approval.signature);
                    result("approval signature verifies", sig != null
                        && Keys.verify(approvalKey.publicKey, claim.getBytes(StandardCharsets.UTF_8), sig), null);
                }
            }
        }

        for (JsonNode n : v.path("json_numbers")) {
            String bits = n.get(0).textValue(), want = n.get(1).textValue();
            double d = Double.longBitsToDouble(Long.parseUnsignedLong(bits, 16));
            same("json number " + bits, want, FloatRepr.format(d));
        }
    }

    private Keys.Key key(String field, JsonNode v) {
        String pem = text(v, field);
        if (pem == null) return null;
        try {
            Keys.Key k = Keys.parsePem(pem, field);
            result(field + " is an Ed25519 public key", true, null);
            return k;
        } catch (IllegalArgumentException e) {
            result(field + " is an Ed25519 public key", false, e.getMessage());
            return null;
        }
    }

    private static String text(JsonNode n, String field) {
        JsonNode f = n.get(field);
        return f == null || !f.isTextual() ? null : f.textValue();
    }
}
