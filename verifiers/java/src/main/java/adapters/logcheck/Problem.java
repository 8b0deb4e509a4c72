package adapters.logcheck;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A problem: a code and a place (§10). The place is a record (partition and offset, with
 * the event's adapter, seq and id when it decoded), a checkpoint's cold-storage name, or a
 * bundle file (§11).
 */
final class Problem {
    enum Kind { RECORD, CHECKPOINT, FILE }

    final String code;
    final String message;
    final Kind kind;
    // RECORD
    final int partition;
    final long offset;
    final String adapter;
    final Long seq;
    final String eventId;
    // CHECKPOINT (its name) or FILE (its path)
    final String where;

    private Problem(String code, String message, Kind kind, int partition, long offset,
                    String adapter, Long seq, String eventId, String where) {
        this.code = code;
        this.message = message;
        this.kind = kind;
        this.partition = partition;
        this.offset = offset;
        this.adapter = adapter;
        this.seq = seq;
        this.eventId = eventId;
        this.where = where;
    }

    static Problem atRecord(String code, int partition, long offset, Event e, String message) {
        return new Problem(code, message, Kind.RECORD, partition, offset,
            e == null ? null : e.adapter, e == null ? null : e.seq, e == null ? null : e.eventId, null);
    }

    static Problem atCheckpoint(String code, String name, String message) {
        return new Problem(code, message, Kind.CHECKPOINT, 0, 0, null, null, null, name);
    }

    static Problem atFile(String code, String file, String message) {
        return new Problem(code, message, Kind.FILE, 0, 0, null, null, null, file);
    }

    /** The JSON object of {@code verify --json}'s problems list. */
    Map<String, Object> toJson() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("code", code);
        switch (kind) {
            case RECORD:
                m.put("partition", partition);
                m.put("offset", offset);
                m.put("adapter", adapter);
                m.put("seq", seq);
                m.put("event_id", eventId);
                break;
            case CHECKPOINT:
                m.put("checkpoint", where);
                break;
            case FILE:
                m.put("file", where);
                break;
        }
        m.put("message", message);
        return m;
    }

    /** One human line. */
    String describe() {
        switch (kind) {
            case RECORD:
                return String.format("%s at partition %d offset %d%s: %s", code, partition, offset,
                    adapter == null ? "" : " (" + adapter + " seq " + seq + ")", message);
            case CHECKPOINT:
                return code + " at " + where + ": " + message;
            default:
                return code + " at " + where + ": " + message;
        }
    }
}
