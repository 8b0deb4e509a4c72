package adapters.logcheck;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/** The signed statements of §5 (events) and §9 (approval decisions), and their checks. */
final class Signatures {
    static final String EVENT_PREFIX = "adapters.log-event.v1\n";
    static final String APPROVAL_PREFIX = "adapters.approval-decision.v1\n";

    private Signatures() {}

    /** §5: {@code "adapters.log-event.v1\n" + adapter + "\n" + decimal(seq) + "\n" + hash}. */
    static String eventStatement(Event e) {
        return EVENT_PREFIX + e.adapter + "\n" + e.seq + "\n" + e.hash;
    }

    /**
     * §9: {@code "adapters.approval-decision.v1\n" + JSON({adapter, approvers, comment,
     * decision, environment, manifest_digest, report_digest, revision[, serving_contract]})},
     * keys already in sorted order; serving_contract only when present and non-empty (§9).
     */
    static String approvalClaim(Event e) {
        Event.Approval a = e.approval;
        StringBuilder sb = new StringBuilder(APPROVAL_PREFIX.length() + 512);
        sb.append(APPROVAL_PREFIX).append('{');
        sb.append("\"adapter\":");
        CanonicalJson.writeString(sb, e.adapter);
        sb.append(",\"approvers\":[");
        List<String> approvers = a.approvers;
        for (int i = 0; i < approvers.size(); i++) {
            if (i > 0) sb.append(',');
            CanonicalJson.writeString(sb, approvers.get(i));
        }
        sb.append("],\"comment\":");
        CanonicalJson.writeString(sb, a.comment);
        sb.append(",\"decision\":");
        CanonicalJson.writeString(sb, a.decision);
        sb.append(",\"environment\":");
        CanonicalJson.writeString(sb, e.environment);
        sb.append(",\"manifest_digest\":");
        CanonicalJson.writeString(sb, a.manifestDigest);
        sb.append(",\"report_digest\":");
        CanonicalJson.writeString(sb, a.reportDigest);
        sb.append(",\"revision\":");
        CanonicalJson.writeString(sb, e.revision);
        if (a.servingContract != null && !a.servingContract.isEmpty()) {
            sb.append(",\"serving_contract\":");
            CanonicalJson.writeString(sb, a.servingContract);
        }
        sb.append('}');
        return sb.toString();
    }

    /**
     * §5 for one record: missing headers, an untrusted key id, a signature that is not strict
     * base64 or does not verify, a retired key. Returns the problem, or null when good.
     * Headers: the last one of each name (RawRecord).
     */
    static Problem checkEvent(RawRecord raw, Event e, Keys.Ring ring, Map<String, Map<String, Long>> retired) {
        if (raw.logSignature == null || raw.logKeyId == null) {
            return Problem.atRecord("log_signature_missing", raw.partition, raw.offset, e,
                raw.logSignature == null ? "no log_signature header" : "no log_key_id header");
        }
        String keyId = new String(raw.logKeyId, StandardCharsets.UTF_8);
        Keys.Key key = ring.get(keyId);
        if (key == null) {
            return Problem.atRecord("log_signature_unknown_key", raw.partition, raw.offset, e,
                "log key " + CanonicalJson.quote(keyId) + " is not trusted");
        }
        byte[] sig = Keys.strictBase64(new String(raw.logSignature, StandardCharsets.UTF_8));
        if (sig == null) {
            return Problem.atRecord("log_signature_invalid", raw.partition, raw.offset, e,
                "log_signature is not base64");
        }
        if (!Keys.verify(key.publicKey, eventStatement(e).getBytes(StandardCharsets.UTF_8), sig)) {
            return Problem.atRecord("log_signature_invalid", raw.partition, raw.offset, e,
                "log_signature does not verify with " + keyId);
        }
        // §5/§6: a valid signature by a retired key, past the head its retiring checkpoint
        // names for this adapter (0 when it names none).
        Map<String, Long> retiredAt = retired.get(keyId);
        if (retiredAt != null) {
            long head = retiredAt.getOrDefault(e.adapter, 0L);
            if (e.seq > head) {
                return Problem.atRecord("log_signature_retired_key", raw.partition, raw.offset, e,
                    "signed by " + keyId + ", retired after seq " + head + " of this adapter");
            }
        }
        return null;
    }

    /** §9 / §10 step 10 for a RevisionApproved or RevisionDenied. */
    static Problem checkApproval(RawRecord raw, Event e, Keys.Ring approvalKeys) {
        Event.Approval a = e.approval;
        Keys.Key key = approvalKeys.get(a.keyId);
        if (key == null) {
            return Problem.atRecord("signature_unknown_key", raw.partition, raw.offset, e,
                "approval key " + CanonicalJson.quote(a.keyId) + " is not trusted");
        }
        byte[] sig = Keys.strictBase64(a.signature);
        if (sig == null) {
            return Problem.atRecord("signature_invalid", raw.partition, raw.offset, e,
                "approval signature is not base64");
        }
        if (!Keys.verify(key.publicKey, approvalClaim(e).getBytes(StandardCharsets.UTF_8), sig)) {
            return Problem.atRecord("signature_invalid", raw.partition, raw.offset, e,
                "approval signature does not verify with " + a.keyId);
        }
        return null;
    }
}
