package adapters.logcheck;

import com.fasterxml.jackson.core.JsonProcessingException;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.DateTimeException;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

/**
 * logcheck: an independent verifier of the lifecycle log (docs/log-format.md).
 *
 * <p>Exit status: 0 verified / answered; 1 problems found or nothing served; 2 usage, I/O or
 * connection error (one line on stderr).
 */
public final class Main {
    static final String VERIFIER = "logcheck-java/1";

    static final String USAGE = String.join("\n",
        "usage: logcheck vectors FILE",
        "       logcheck verify SOURCE (--log-key PEM... | --unsigned) [--approval-key PEM]... [--every-signature]"
            + " [--copy-of TOPIC] [--json]",
        "       logcheck at SOURCE --time ISO-8601-with-zone --environment ENV [--adapter NAME] [--json]",
        "SOURCE: --bundle DIR [--trust-bundle-keys]",
        "      | --bootstrap HOST:PORT --topic T [--user U --password-file F] [--checkpoints DIR] [--schemas DIR]");

    /** A usage error (exit 2). */
    static final class UsageException extends Exception {
        UsageException(String message) {
            super(message);
        }
    }

    private Main() {}

    public static void main(String[] args) {
        PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false, StandardCharsets.UTF_8);
        int status;
        try {
            status = run(args, out);
        } catch (UsageException e) {
            System.err.println("logcheck: " + e.getMessage() + " (logcheck --help for usage)");
            status = 2;
        } catch (IOException e) {
            System.err.println("logcheck: " + explain(e));
            status = 2;
        } catch (UncheckedIOException e) {
            System.err.println("logcheck: " + explain(e.getCause()));
            status = 2;
        }
        out.flush();
        System.exit(status);
    }

    /** One line for an I/O error (the JDK's file errors carry only the path). */
    static String explain(IOException e) {
        String m = Checkpoints.oneLine(e.getMessage());
        if (e instanceof java.nio.file.NoSuchFileException) return "no such file: " + m;
        if (e instanceof java.nio.file.AccessDeniedException) return "permission denied: " + m;
        if (e instanceof java.nio.file.NotDirectoryException) return "not a folder: " + m;
        if (e instanceof java.nio.charset.CharacterCodingException) return "not UTF-8 text";
        return m.isEmpty() ? e.getClass().getSimpleName() : m;
    }

    static int run(String[] args, PrintStream out) throws UsageException, IOException {
        if (args.length == 0) throw new UsageException("no command");
        String command = args[0];
        Args a = Args.parse(args, 1);
        switch (command) {
            case "vectors": {
                if (a.positional.size() != 1) throw new UsageException("vectors takes one FILE");
                a.rejectAllBut("--schemas");
                Path schemas = a.path("--schemas", repo().resolve("schemas"));
                return Vectors.run(Paths.get(a.positional.get(0)), Schemas.load(schemas), out);
            }
            case "verify": {
                a.rejectPositional();
                for (String k : new String[] {"--time", "--environment", "--adapter"}) {
                    if (a.has(k)) throw new UsageException(k + " goes with at, not verify");
                }
                if (!a.has("--unsigned") && a.values("--log-key").isEmpty() && !a.has("--trust-bundle-keys")) {
                    // Never a silent downgrade to the chain alone: a forged event with
                    // recomputed hashes passes a chain check (§5).
                    throw new UsageException("no log key to check signatures with: pass --log-key PEM"
                        + " (the relay's public key, from its owner), or --unsigned to check the chains alone");
                }
                Read read = read(a);
                if (a.has("--json")) out.println(toJson(verifyJson(read)));
                else printVerify(read, out);
                return read.result.ok ? 0 : 1;
            }
            case "at":
                a.rejectPositional();
                return at(a, out);
            case "-h":
            case "--help":
            case "help":
                out.println(USAGE);
                return 0;
            default:
                throw new UsageException("unknown command " + command);
        }
    }

    // ---- reading and verifying -----------------------------------------------------------------

    /** One read of a log and its verdict. */
    static final class Read {
        String topic;
        Verifier.Result result;
    }

    static Read read(Args a) throws UsageException, IOException {
        boolean bundleMode = a.has("--bundle");
        boolean kafkaMode = a.has("--bootstrap");
        if (bundleMode == kafkaMode) throw new UsageException("give exactly one SOURCE: --bundle DIR or --bootstrap HOST:PORT");
        Keys.Ring logRing = new Keys.Ring();
        Keys.Ring approvalRing = new Keys.Ring();
        String copyOf = a.value("--copy-of");
        Read read = new Read();
        Path schemaDir;
        Path checkpointDir;
        RecordSource source;
        CompletableFuture<List<Problem>> damaged = CompletableFuture.completedFuture(List.of());
        Bundle bundle = null;
        if (bundleMode) {
            for (String k : new String[] {"--topic", "--user", "--password-file", "--checkpoints", "--schemas"}) {
                if (a.has(k)) throw new UsageException(k + " goes with --bootstrap, not --bundle");
            }
            bundle = Bundle.open(Paths.get(a.value("--bundle")));
            read.topic = bundle.topic;
            // §11: the bundle's own keys are trusted only when the user says so.
            if (a.has("--trust-bundle-keys")) {
                for (Keys.Key k : bundle.logKeys()) logRing.add(k);
                for (Keys.Key k : bundle.approvalKeys()) approvalRing.add(k);
            }
            schemaDir = Files.isDirectory(bundle.schemas()) ? bundle.schemas() : repo().resolve("schemas");
            checkpointDir = bundle.checkpoints(copyOf != null ? copyOf : read.topic);
            Bundle b = bundle;
            // The file digests only catch a damaged copy (§11); hash them alongside the checks.
            damaged = CompletableFuture.supplyAsync(() -> {
                try {
                    return b.checkFiles();
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        } else {
            if (a.has("--trust-bundle-keys")) throw new UsageException("--trust-bundle-keys goes with --bundle");
            read.topic = a.value("--topic");
            if (read.topic == null) throw new UsageException("--bootstrap needs --topic");
            if (a.has("--user") != a.has("--password-file")) throw new UsageException("--user and --password-file go together");
            schemaDir = a.path("--schemas", repo().resolve("schemas"));
            Path root = a.path("--checkpoints", null);
            checkpointDir = root == null ? null : root.resolve("checkpoints").resolve(copyOf != null ? copyOf : read.topic);
        }
        for (String pem : a.values("--log-key")) logRing.add(Keys.readPem(Paths.get(pem)));
        for (String pem : a.values("--approval-key")) approvalRing.add(Keys.readPem(Paths.get(pem)));
        Schemas schemas = Schemas.load(schemaDir);
        String log = copyOf != null ? copyOf : read.topic;

        Verifier.Options o = new Verifier.Options();
        o.signatures = !logRing.isEmpty() && !a.has("--unsigned");
        o.everySignature = a.has("--every-signature");
        o.approvalKeys = approvalRing.isEmpty() ? null : approvalRing;
        if (o.signatures) {
            o.checkpoints = Checkpoints.check(checkpointDir, log, logRing, new CanonicalJson());
            o.logRing = o.checkpoints.ring;
        } else {
            o.checkpoints = new Checkpoints.Result();
            o.checkpoints.ring = logRing;
        }

        if (kafkaMode) {
            String password = null;
            if (a.has("--password-file")) {
                password = Files.readString(Paths.get(a.value("--password-file")), StandardCharsets.UTF_8).strip();
            }
            source = KafkaSource.open(a.value("--bootstrap"), read.topic, a.value("--user"), password);
        } else {
            source = bundle.records();
        }
        try (RecordSource s = source) {
            read.result = new Verifier(schemas, o).run(s);
        }
        try {
            Verifier.prepend(read.result, damaged.join());
        } catch (CompletionException e) {
            if (e.getCause() instanceof UncheckedIOException) throw ((UncheckedIOException) e.getCause()).getCause();
            throw e;
        }
        return read;
    }

    static Map<String, Object> verifyJson(Read read) {
        Verifier.Result r = read.result;
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("verifier", VERIFIER);
        m.put("topic", read.topic);
        m.put("ok", r.ok);
        m.put("events", r.events);
        m.put("duplicates", r.duplicates);
        m.put("adapters", r.adapters);
        m.put("signatures_checked", r.signaturesChecked);
        m.put("checkpoints", r.checkpoints);
        m.put("latest_checkpoint", r.latestCheckpoint);
        List<Object> unanchored = new ArrayList<>(r.unanchored.size());
        for (Chain.Link l : r.unanchored) {
            Map<String, Object> u = new LinkedHashMap<>();
            u.put("adapter", l.event.adapter);
            u.put("seq", l.event.seq);
            u.put("partition", l.partition);
            u.put("offset", l.offset);
            unanchored.add(u);
        }
        m.put("unanchored", unanchored);
        List<Object> problems = new ArrayList<>(r.problems.size());
        for (Problem p : r.problems) problems.add(p.toJson());
        m.put("problems", problems);
        return m;
    }

    static void printVerify(Read read, PrintStream out) {
        Verifier.Result r = read.result;
        String facts = String.format("%s: %d events, %d duplicates, %d adapters, %s, %d valid checkpoints (latest %s), %d unanchored",
            read.topic, r.events, r.duplicates, r.adapters.size(),
            r.signaturesChecked ? "signatures checked" : "signatures NOT checked (no log key)",
            r.checkpoints, r.latestCheckpoint, r.unanchored.size());
        if (r.ok) {
            out.println("OK (logcheck-java/1) " + facts);
            return;
        }
        out.println("FAILED (logcheck-java/1) " + facts + ", " + r.problems.size() + " problems");
        out.println("first problem: " + r.problems.get(0).describe());
        for (Problem p : r.problems) out.println("  " + p.describe());
    }

    // ---- at ------------------------------------------------------------------------------------

    static int at(Args a, PrintStream out) throws UsageException, IOException {
        String time = a.value("--time");
        String env = a.value("--environment");
        if (time == null || env == null) throw new UsageException("at needs --time and --environment");
        long micros = parseTimeMicros(time);
        String only = a.value("--adapter");
        Read read = read(a);

        // The fold (§8) over the placed links; an illegal move in it leaves no answer.
        boolean illegal = false;
        for (Problem p : read.result.problems) {
            if (p.code.equals("illegal_transition") && (only == null || only.equals(p.adapter))) {
                System.err.println("logcheck: illegal transition: " + p.describe());
                illegal = true;
            }
        }
        if (illegal) return 1;

        List<Pointers.Answer> answers = Pointers.fold(read.result.placed).at(env, micros, only);
        if (a.has("--json")) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("verifier", VERIFIER);
            m.put("topic", read.topic);
            m.put("environment", env);
            m.put("time", time);
            m.put("verified", read.result.ok);
            List<Object> list = new ArrayList<>();
            for (Pointers.Answer ans : answers) {
                Map<String, Object> e = new LinkedHashMap<>();
                e.put("adapter", ans.adapter);
                Pointers.Pointer p = ans.pointer;
                if (p.active == null) {
                    e.put("active", null);
                } else {
                    Map<String, Object> act = new LinkedHashMap<>();
                    act.put("revision", p.active);
                    act.put("approval", approvalJson(ans.activeApproval));
                    e.put("active", act);
                }
                if (p.canary == null) {
                    e.put("canary", null);
                } else {
                    Map<String, Object> c = new LinkedHashMap<>();
                    c.put("revision", p.canary.revision);
                    c.put("traffic_percent", p.canary.trafficPercent);
                    c.put("tenants", p.canary.tenants);
                    c.put("approval", approvalJson(ans.canaryApproval));
                    e.put("canary", c);
                }
                e.put("rollback_target", p.rollbackTarget);
                list.add(e);
            }
            m.put("adapters", list);
            out.println(toJson(m));
        } else {
            out.printf("%s in %s at %s (log %s)%n", read.topic, env, time,
                read.result.ok ? "verified" : "NOT verified: " + read.result.problems.size() + " problems");
            if (answers.isEmpty()) out.println("no adapter has a pointer in " + env);
            for (Pointers.Answer ans : answers) {
                Pointers.Pointer p = ans.pointer;
                out.printf("%s: active %s%s; canary %s; rollback target %s%n", ans.adapter,
                    p.active == null ? "none" : p.active, approvalText(ans.activeApproval),
                    p.canary == null ? "none" : p.canary.revision + " at " + p.canary.trafficPercent + "%"
                        + (p.canary.tenants.isEmpty() ? "" : " for " + String.join(",", p.canary.tenants))
                        + approvalText(ans.canaryApproval),
                    p.rollbackTarget == null ? "none" : p.rollbackTarget);
            }
        }
        // "Nothing served": no answered adapter has an active or a canary revision at that time.
        boolean served = false;
        for (Pointers.Answer ans : answers) served |= ans.pointer.active != null || ans.pointer.canary != null;
        return served ? 0 : 1;
    }

    private static Object approvalJson(Pointers.ApprovalRecord r) {
        if (r == null) return null;
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("event_id", r.eventId);
        m.put("approvers", r.approvers);
        return m;
    }

    private static String approvalText(Pointers.ApprovalRecord r) {
        return r == null ? " (no approval)" : " (approved by " + String.join(",", r.approvers) + " in " + r.eventId + ")";
    }

    /** ISO 8601 with a zone ("Z" or an offset) to microseconds since the epoch. */
    static long parseTimeMicros(String s) throws UsageException {
        try {
            Instant t = OffsetDateTime.parse(s.replace(' ', 'T'), DateTimeFormatter.ISO_OFFSET_DATE_TIME).toInstant();
            return Math.addExact(Math.multiplyExact(t.getEpochSecond(), 1_000_000L), t.getNano() / 1000);
        } catch (DateTimeException | ArithmeticException e) {
            throw new UsageException("--time " + s + " is not an ISO 8601 time with a zone");
        }
    }

    // ---- helpers -------------------------------------------------------------------------------

    static String toJson(Object o) {
        try {
            return Json.MAPPER.writeValueAsString(o);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The repository root: set by the launcher, else three levels above the jar. */
    static Path repo() {
        String p = System.getProperty("logcheck.repo");
        if (p != null) return Paths.get(p);
        try {
            Path jar = Paths.get(Main.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            return jar.getParent().getParent().getParent();
        } catch (Exception e) {
            return Paths.get(".");
        }
    }

    /** Command-line options: "--name value", repeatable; flags without a value. */
    static final class Args {
        static final List<String> FLAGS = List.of("--json", "--every-signature", "--trust-bundle-keys", "--unsigned");
        static final List<String> VALUED = List.of("--bundle", "--bootstrap", "--topic", "--user", "--password-file",
            "--checkpoints", "--schemas", "--log-key", "--approval-key", "--copy-of", "--time", "--environment",
            "--adapter");
        static final List<String> REPEATABLE = List.of("--log-key", "--approval-key");

        final Map<String, List<String>> options = new LinkedHashMap<>();
        final List<String> positional = new ArrayList<>();

        static Args parse(String[] args, int from) throws UsageException {
            Args a = new Args();
            for (int i = from; i < args.length; i++) {
                String s = args[i];
                String name = s, value = null;
                int eq = s.indexOf('=');
                if (s.startsWith("--") && eq > 0) {
                    name = s.substring(0, eq);
                    value = s.substring(eq + 1);
                }
                if (FLAGS.contains(name)) {
                    if (value != null) throw new UsageException(name + " takes no value");
                    a.options.computeIfAbsent(name, k -> new ArrayList<>()).add("");
                } else if (VALUED.contains(name)) {
                    if (value == null) {
                        if (i + 1 >= args.length) throw new UsageException(name + " needs a value");
                        value = args[++i];
                    }
                    List<String> vs = a.options.computeIfAbsent(name, k -> new ArrayList<>());
                    if (!vs.isEmpty() && !REPEATABLE.contains(name)) throw new UsageException(name + " given twice");
                    vs.add(value);
                } else if (s.startsWith("--")) {
                    throw new UsageException("unknown option " + s);
                } else {
                    a.positional.add(s);
                }
            }
            return a;
        }

        boolean has(String name) {
            return options.containsKey(name);
        }

        String value(String name) {
            List<String> v = options.get(name);
            return v == null ? null : v.get(0);
        }

        List<String> values(String name) {
            return options.getOrDefault(name, List.of());
        }

        Path path(String name, Path otherwise) {
            String v = value(name);
            return v == null ? otherwise : Paths.get(v);
        }

        void rejectPositional() throws UsageException {
            if (!positional.isEmpty()) throw new UsageException("unexpected argument " + positional.get(0));
        }

        void rejectAllBut(String... allowed) throws UsageException {
            for (String k : options.keySet()) {
                if (!List.of(allowed).contains(k)) throw new UsageException(k + " does not go with this command");
            }
        }
    }
}
