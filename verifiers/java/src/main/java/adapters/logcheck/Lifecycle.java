package adapters.logcheck;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * §7's state machine, judged as §10 says: per chain, revision by revision over the links in
 * seq order; the first illegal move of a revision is {@code illegal_transition} at its link,
 * and that revision's later links are not judged.
 */
final class Lifecycle {
    private Lifecycle() {}

    /** The tracks of one revision. */
    static final class Revision {
        /** The revision track's state; null before RevisionRegistered ("-"). */
        String state;
        /** Environment tracks that have moved; others stand at "validated" once the revision is. */
        final Map<String, String> envs = new HashMap<>();

        String envState(String env) {
            String s = envs.get(env);
            if (s != null) return s;
            // §7: "An environment track starts at validated when the revision track is validated."
            return "validated".equals(state) ? "validated" : null;
        }
    }

    /** Judges one chain's links (in seq order); returns the illegal_transition problems. */
    static List<Problem> judge(List<Chain.Link> linksInSeqOrder) {
        List<Problem> out = new ArrayList<>();
        Map<String, Revision> revisions = new HashMap<>();
        Set<String> stopped = new HashSet<>();
        for (Chain.Link l : linksInSeqOrder) {
            Event e = l.event;
            if (stopped.contains(e.revision)) continue;
            Revision r = revisions.computeIfAbsent(e.revision, k -> new Revision());
            String why = apply(r, e);
            if (why != null) {
                out.add(l.problem("illegal_transition", why));
                stopped.add(e.revision);
            }
        }
        return out;
    }

    /** Applies one event; returns why it is illegal (the state untouched), or null. */
    static String apply(Revision r, Event e) {
        boolean revisionTrack = e.environment.isEmpty();
        if (revisionTrack) {
            String before = r.state;
            String after = revisionMove(before, e.type);
            if (after == null) {
                return e.type + " on the revision track of " + e.revision + " in state " + show(before);
            }
            if (e.type.equals("RevisionExpired")) {
                for (Map.Entry<String, String> t : r.envs.entrySet()) {
                    if (t.getValue().equals("canary") || t.getValue().equals("active")) {
                        return "RevisionExpired while " + e.revision + " is " + t.getValue() + " in " + t.getKey();
                    }
                }
            }
            r.state = after;
            return null;
        }
        String env = e.environment;
        String before = r.envState(env);
        boolean quarantineExit = "quarantined".equals(r.state)
            && (e.type.equals("RevisionRolledBack") || e.type.equals("RevisionSuperseded"));
        if (!"validated".equals(r.state) && !quarantineExit) {
            return e.type + " in " + env + " while the revision track of " + e.revision + " is " + show(r.state);
        }
        String after = environmentMove(before, e.type);
        if (after == null) {
            return e.type + " in " + env + " for " + e.revision + " in state " + show(before);
        }
        r.envs.put(env, after);
        return null;
    }

    /** The revision track table of §7; null when the move is not in it. */
    static String revisionMove(String before, String type) {
        String b = before == null ? "-" : before;
        switch (type) {
            case "RevisionRegistered":
                return b.equals("-") ? "registered" : null;
            case "RevisionValidated":
                return b.equals("registered") ? "validated" : null;
            case "RevisionRejected":
                return b.equals("registered") ? "rejected" : null;
            case "RevisionExpired":
                return b.equals("validated") || b.equals("rejected") || b.equals("quarantined") ? "expired" : null;
            case "ManifestArchived":
                return b.equals("expired") ? "archived" : null;
            case "WeightsDeleted":
                return b.equals("archived") ? "deleted" : null;
            case "RevisionQuarantined":
                switch (b) {
                    case "registered":
                    case "validated":
                    case "rejected":
                        return "quarantined";
                    case "expired":
                        return "expired";
                    case "archived":
                        return "archived";
                    default:
                        return null;
                }
            default:
                return null;
        }
    }

    /** The environment track table of §7; null when the move is not in it. */
    static String environmentMove(String before, String type) {
        String b = before == null ? "-" : before;
        switch (type) {
            case "RevisionEvaluated":
                return b.equals("validated") ? "evaluated" : null;
            case "RevisionEvaluationFailed":
                return b.equals("validated") ? "evaluation_failed" : null;
            case "RevisionApproved":
                return b.equals("evaluated") ? "approved" : null;
            case "RevisionDenied":
                return b.equals("evaluated") ? "denied" : null;
            case "CanaryStarted":
                return b.equals("approved") ? "canary" : null;
            case "CanaryExpanded":
                return b.equals("canary") ? "canary" : null;
            case "RevisionActivated":
                return b.equals("approved") || b.equals("canary") || b.equals("superseded") ? "active" : null;
            case "RevisionRolledBack":
                return b.equals("canary") || b.equals("active") ? "rolled_back" : null;
            case "RevisionSuperseded":
                return b.equals("active") ? "superseded" : null;
            case "RolloutFailed":
            case "RolloutStalled":
                // §7: observations; legal where a rollout can start, and they move nothing.
                return b.equals("approved") || b.equals("canary") || b.equals("active")
                    || b.equals("superseded") ? b : null;
            default:
                return null;
        }
    }

    private static String show(String state) {
        return state == null ? "-" : state;
    }
}
