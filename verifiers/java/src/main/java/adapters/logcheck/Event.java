package adapters.logcheck;

import java.util.List;

/** The fields of one decoded lifecycle event that the checks need (§3, §8, §9). */
final class Event {
    /** The writer schema's short name, e.g. {@code RevisionApproved}. */
    String type;
    /** The writer schema's full name, the first line of the canonical bytes (§4). */
    String fullName;
    String eventId;
    String adapter;
    String revision;
    String environment;
    long seq;
    String prevHash;
    String hash;
    long occurredAt;
    String actorPrincipal;
    /** §10 step 2: the hash recomputes from the event's own content and own prev_hash. */
    boolean intact;

    /** CanaryStarted / CanaryExpanded (§8). */
    long trafficPercent;
    List<String> tenants;

    /** RevisionApproved / RevisionDenied (§9); null for every other type. */
    Approval approval;

    static final class Approval {
        String decision; // "approved" | "denied"
        String manifestDigest;
        String reportDigest;
        String comment;
        List<String> approvers;
        String signature;
        String keyId;
        /** Present only when the writer schema has the field (v2). */
        String servingContract;
    }
}
