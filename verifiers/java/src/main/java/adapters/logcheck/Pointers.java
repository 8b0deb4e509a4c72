package adapters.logcheck;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * §8's pointers, folded over the placed links in log order, and §10's "What served in
 * environment E at time T".
 */
final class Pointers {
    /** A canary: its revision, share and tenants. */
    static final class Canary {
        final String revision;
        final long trafficPercent;
        final List<String> tenants;

        Canary(String revision, long trafficPercent, List<String> tenants) {
            this.revision = revision;
            this.trafficPercent = trafficPercent;
            this.tenants = List.copyOf(tenants);
        }

        @Override
        public boolean equals(Object o) {
            if (!(o instanceof Canary)) return false;
            Canary c = (Canary) o;
            return revision.equals(c.revision) && trafficPercent == c.trafficPercent && tenants.equals(c.tenants);
        }

        @Override
        public int hashCode() {
            return Objects.hash(revision, trafficPercent, tenants);
        }
    }

    /** The pointer of one (adapter, environment). Immutable; each change makes a new one. */
    static final class Pointer {
        final String active;
        final Canary canary;
        final String rollbackTarget;

        Pointer(String active, Canary canary, String rollbackTarget) {
            this.active = active;
            this.canary = canary;
            this.rollbackTarget = rollbackTarget;
        }

        static final Pointer EMPTY = new Pointer(null, null, null);

        @Override
        public boolean equals(Object o) {
            if (!(o instanceof Pointer)) return false;
            Pointer p = (Pointer) o;
            return Objects.equals(active, p.active) && Objects.equals(canary, p.canary)
                && Objects.equals(rollbackTarget, p.rollbackTarget);
        }

        @Override
        public int hashCode() {
            return Objects.hash(active, canary, rollbackTarget);
        }

        /** Every field naming x cleared. */
        Pointer without(String x) {
            return new Pointer(x.equals(active) ? null : active,
                canary != null && x.equals(canary.revision) ? null : canary,
                x.equals(rollbackTarget) ? null : rollbackTarget);
        }
    }

    /** A pointer change: the pointer after an event, and the event's occurred_at. */
    static final class Change {
        final long occurredAt;
        final Pointer after;

        Change(long occurredAt, Pointer after) {
            this.occurredAt = occurredAt;
            this.after = after;
        }
    }

    /** A RevisionApproved: when, its id and its approvers. */
    static final class ApprovalRecord {
        final long occurredAt;
        final String eventId;
        final List<String> approvers;

        ApprovalRecord(long occurredAt, String eventId, List<String> approvers) {
            this.occurredAt = occurredAt;
            this.eventId = eventId;
            this.approvers = approvers;
        }
    }

    /** adapter -> environment -> current pointer. */
    private final Map<String, Map<String, Pointer>> current = new HashMap<>();
    /** adapter -> environment -> changes in log order. */
    private final Map<String, Map<String, List<Change>>> history = new HashMap<>();
    /** adapter + "\n" + revision + "\n" + environment -> RevisionApproved events, in log order. */
    private final Map<String, List<ApprovalRecord>> approvals = new HashMap<>();

    /** Folds the placed links (log order). */
    static Pointers fold(List<Chain.Link> placed) {
        Pointers p = new Pointers();
        for (Chain.Link l : placed) p.apply(l.event);
        return p;
    }

    private void apply(Event e) {
        String x = e.revision;
        Map<String, Pointer> envs = current.computeIfAbsent(e.adapter, k -> new HashMap<>());
        switch (e.type) {
            case "CanaryStarted":
                update(e, e.environment, ptr -> new Pointer(ptr.active,
                    new Canary(x, e.trafficPercent, e.tenants), ptr.rollbackTarget));
                break;
            case "CanaryExpanded":
                // Updates the share (only) while x is the canary.
                update(e, e.environment, ptr -> ptr.canary == null || !x.equals(ptr.canary.revision) ? ptr
                    : new Pointer(ptr.active, new Canary(x, e.trafficPercent, ptr.canary.tenants), ptr.rollbackTarget));
                break;
            case "RevisionActivated":
                update(e, e.environment, ptr -> {
                    // The previously active revision becomes the target; none active keeps it;
                    // never x itself.
                    String target = ptr.active != null && !ptr.active.equals(x) ? ptr.active : ptr.rollbackTarget;
                    if (x.equals(target)) target = null;
                    Canary canary = ptr.canary != null && x.equals(ptr.canary.revision) ? null : ptr.canary;
                    return new Pointer(x, canary, target);
                });
                break;
            case "RevisionRolledBack":
                update(e, e.environment, ptr -> {
                    Pointer cleared = ptr.without(x);
                    // "and the target, when x was active"
                    return x.equals(ptr.active) ? new Pointer(cleared.active, cleared.canary, null) : cleared;
                });
                break;
            case "RevisionExpired":
                for (String env : new ArrayList<>(envs.keySet())) update(e, env, ptr -> ptr.without(x));
                break;
            case "RevisionQuarantined":
                for (String env : new ArrayList<>(envs.keySet())) {
                    update(e, env, ptr -> x.equals(ptr.rollbackTarget)
                        ? new Pointer(ptr.active, ptr.canary, null) : ptr);
                }
                break;
            case "RevisionApproved":
                approvals.computeIfAbsent(e.adapter + "\n" + x + "\n" + e.environment, k -> new ArrayList<>())
                    .add(new ApprovalRecord(e.occurredAt, e.eventId, e.approval.approvers));
                break;
            default:
                break;
        }
    }

    private void update(Event e, String env, java.util.function.UnaryOperator<Pointer> f) {
        Map<String, Pointer> envs = current.computeIfAbsent(e.adapter, k -> new HashMap<>());
        Pointer before = envs.getOrDefault(env, Pointer.EMPTY);
        Pointer after = f.apply(before);
        if (after.equals(before)) return;
        envs.put(env, after);
        history.computeIfAbsent(e.adapter, k -> new HashMap<>())
            .computeIfAbsent(env, k -> new ArrayList<>())
            .add(new Change(e.occurredAt, after));
    }

    /** One answered adapter. */
    static final class Answer {
        final String adapter;
        final Pointer pointer;
        final ApprovalRecord activeApproval;
        final ApprovalRecord canaryApproval;

        Answer(String adapter, Pointer pointer, ApprovalRecord activeApproval, ApprovalRecord canaryApproval) {
            this.adapter = adapter;
            this.pointer = pointer;
            this.activeApproval = activeApproval;
            this.canaryApproval = canaryApproval;
        }
    }

    /**
     * §10 "What served": for each adapter (or only {@code onlyAdapter}) whose pointer in env
     * ever changed (by the end of the log), in name order: the pointer after the last change
     * (in log order) with occurred_at at or before the time, all nulls when none had by then.
     */
    List<Answer> at(String env, long timeMicros, String onlyAdapter) {
        TreeMap<String, Answer> out = new TreeMap<>(CanonicalJson.CODE_POINT_ORDER);
        for (Map.Entry<String, Map<String, List<Change>>> a : history.entrySet()) {
            String adapter = a.getKey();
            if (onlyAdapter != null && !onlyAdapter.equals(adapter)) continue;
            List<Change> changes = a.getValue().get(env);
            if (changes == null) continue;
            Pointer ptr = Pointer.EMPTY;
            for (Change c : changes) if (c.occurredAt <= timeMicros) ptr = c.after;
            out.put(adapter, new Answer(adapter, ptr,
                ptr.active == null ? null : lastApproval(adapter, ptr.active, env, timeMicros),
                ptr.canary == null ? null : lastApproval(adapter, ptr.canary.revision, env, timeMicros)));
        }
        return new ArrayList<>(out.values());
    }

    private ApprovalRecord lastApproval(String adapter, String revision, String env, long timeMicros) {
        List<ApprovalRecord> list = approvals.get(adapter + "\n" + revision + "\n" + env);
        if (list == null) return null;
        ApprovalRecord last = null;
        for (ApprovalRecord r : list) if (r.occurredAt <= timeMicros) last = r;
        return last;
    }
}
