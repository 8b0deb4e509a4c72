package adapters.logcheck;

import com.fasterxml.jackson.core.io.schubfach.DoubleToDecimal;
import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;

/**
 * Spells a double the way §4 asks (Python's {@code repr(float)}): the shortest decimal that
 * reads back as the same double (the closest such one to the exact value when several
 * exist), positional when {@code -4 < p <= 16} (value = 0.d1..dn x 10^p), exponential
 * otherwise, with a sign and at least two exponent digits.
 *
 * <p>The digits come from Raffaello Giulietti's Schubfach (shipped in jackson-core), which
 * finds the shortest, closest decimal, except that where one digit would do it may prefer a
 * closer two-digit decimal (Java prints 4.9E-324, Python 5e-324). So a two-digit answer is
 * checked with exact arithmetic for a one-digit decimal that reads back. Java 17's own
 * {@code Double.toString} is not used: it is not always shortest (JDK-4511638).
 * {@link #exact} is a slow, independent spelling used to cross-check.
 */
final class FloatRepr {
    private FloatRepr() {}

    static String format(double v) {
        StringBuilder sb = new StringBuilder(24);
        append(sb, v);
        return sb.toString();
    }

    static void append(StringBuilder out, double v) {
        if (special(out, v)) return;
        if (v < 0) { out.append('-'); v = -v; }

        // Fast path: integers below 10^15 are their own shortest spelling ("100.0").
        if (v < 1e15 && v == Math.rint(v)) {
            out.append((long) v).append(".0");
            return;
        }
        String s = DoubleToDecimal.toString(v); // e.g. "1.2345E-5", "123.45"
        int e = s.indexOf('E');
        int exp = e >= 0 ? Integer.parseInt(s.substring(e + 1)) : 0;
        String mant = e >= 0 ? s.substring(0, e) : s;
        int dot = mant.indexOf('.');
        StringBuilder digits = new StringBuilder(20);
        digits.append(mant, 0, dot < 0 ? mant.length() : dot);
        if (dot >= 0) digits.append(mant, dot + 1, mant.length());
        // value = 0.<digits> x 10^p
        int p = (dot < 0 ? mant.length() : dot) + exp;
        int lead = 0;
        while (lead < digits.length() - 1 && digits.charAt(lead) == '0') lead++;
        p -= lead;
        int end = digits.length();
        while (end > lead + 1 && digits.charAt(end - 1) == '0') end--;
        String d = digits.substring(lead, end);
        if (d.length() == 2) {
            BigDecimal one = closestReadingBack(new BigDecimal(v), v, 1);
            if (one != null) {
                spell(out, one);
                return;
            }
        }
        spell(out, d, p);
    }

    /** The same spelling by exact arithmetic alone (slow; for cross-checks). */
    static String exact(double v) {
        StringBuilder out = new StringBuilder(24);
        if (special(out, v)) return out.toString();
        if (v < 0) { out.append('-'); v = -v; }
        BigDecimal x = new BigDecimal(v);
        // A shorter length reads back only if every longer one does too (a p-digit decimal
        // is also a (p+1)-digit one), so the first length that reads back is the shortest.
        for (int p = 1; p <= 17; p++) {
            BigDecimal d = closestReadingBack(x, v, p);
            if (d != null) {
                spell(out, d);
                return out.toString();
            }
        }
        throw new IllegalStateException("no 17-digit decimal reads back as " + v);
    }

    private static boolean special(StringBuilder out, double v) {
        if (Double.isNaN(v)) out.append("NaN");
        else if (Double.isInfinite(v)) out.append(v > 0 ? "Infinity" : "-Infinity");
        else if (v == 0.0) out.append(Double.doubleToRawLongBits(v) < 0 ? "-0.0" : "0.0");
        else return false;
        return true;
    }

    /** The p-digit decimal closest to {@code exact} that reads back as v, or null if none. */
    private static BigDecimal closestReadingBack(BigDecimal exact, double v, int p) {
        BigDecimal down = exact.round(new MathContext(p, RoundingMode.FLOOR));
        BigDecimal up = exact.round(new MathContext(p, RoundingMode.CEILING));
        boolean downOk = down.doubleValue() == v;
        boolean upOk = up.doubleValue() == v;
        if (downOk && upOk) {
            int c = exact.subtract(down).compareTo(up.subtract(exact));
            if (c < 0) return down;
            if (c > 0) return up;
            // Exactly halfway: the one whose last digit is even (round-half-even).
            return exact.round(new MathContext(p, RoundingMode.HALF_EVEN));
        }
        if (downOk) return down;
        if (upOk) return up;
        return null;
    }

    private static void spell(StringBuilder out, BigDecimal d) {
        BigDecimal stripped = d.stripTrailingZeros();
        String digits = stripped.unscaledValue().toString();
        spell(out, digits, digits.length() - stripped.scale());
    }

    /** Writes 0.<digits> x 10^p (digits without leading or trailing zeros) as §4 spells it. */
    private static void spell(StringBuilder out, String digits, int p) {
        int n = digits.length();
        if (-4 < p && p <= 16) {
            if (p <= 0) {
                out.append("0.");
                for (int i = 0; i < -p; i++) out.append('0');
                out.append(digits);
            } else if (p < n) {
                out.append(digits, 0, p).append('.').append(digits, p, n);
            } else {
                out.append(digits);
                for (int i = n; i < p; i++) out.append('0');
                out.append(".0");
            }
        } else {
            out.append(digits.charAt(0));
            if (n > 1) out.append('.').append(digits, 1, n);
            int exp = p - 1;
            out.append('e').append(exp < 0 ? '-' : '+');
            int a = Math.abs(exp);
            if (a < 10) out.append('0');
            out.append(a);
        }
    }
}
