package adapters.logcheck;

import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;

/**
 * Spells a double the way §4 asks (Python's {@code repr(float)}): the shortest decimal that
 * reads back as the same double, the closest such one to the exact value when several
 * exist, positional when {@code -4 < p <= 16} (value = 0.d1..dn x 10^p), exponential
 * otherwise, with a sign and at least two exponent digits.
 *
 * <p>Java 17's {@code Double.toString} is not a shortest-digits algorithm (JDK-4511638), and
 * Java 19's prefers two digits over one (it prints 4.9E-324, Python 5e-324), so neither is
 * used for the digits. Instead: the shortest length is found with exact {@link BigDecimal}
 * arithmetic, starting from the length Double.toString gives (an upper bound: its output
 * always reads back) and going down while a shorter length still reads back.
 */
final class FloatRepr {
    private FloatRepr() {}

    static String format(double v) {
        StringBuilder sb = new StringBuilder(24);
        append(sb, v);
        return sb.toString();
    }

    static void append(StringBuilder out, double v) {
        if (Double.isNaN(v)) { out.append("NaN"); return; }
        if (Double.isInfinite(v)) { out.append(v > 0 ? "Infinity" : "-Infinity"); return; }
        if (v == 0.0) { out.append(Double.doubleToRawLongBits(v) < 0 ? "-0.0" : "0.0"); return; }
        if (v < 0) { out.append('-'); v = -v; }

        // Fast path: small integers (counts, percentages) are their own shortest spelling.
        if (v < 1e15 && v == Math.rint(v)) {
            out.append((long) v).append(".0");
            return;
        }

        BigDecimal exact = new BigDecimal(v);
        int upper = significantDigits(Double.toString(v));
        BigDecimal best = closestReadingBack(exact, v, upper);
        // A shorter length reads back only if every length in between does too (a p-digit
        // decimal is also a (p+1)-digit one), so walk down until it stops.
        for (int p = upper - 1; p >= 1; p--) {
            BigDecimal shorter = closestReadingBack(exact, v, p);
            if (shorter == null) break;
            best = shorter;
        }
        if (best == null) best = exact; // unreachable: Double.toString's length always reads back
        spell(out, best);
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

    /** Number of significant digits in Double.toString's output ("1.2345E-5", "123.0"). */
    private static int significantDigits(String s) {
        int e = s.indexOf('E');
        String mant = e >= 0 ? s.substring(0, e) : s;
        StringBuilder d = new StringBuilder();
        for (int i = 0; i < mant.length(); i++) {
            char c = mant.charAt(i);
            if (c >= '0' && c <= '9') d.append(c);
        }
        int a = 0, b = d.length();
        while (a < b && d.charAt(a) == '0') a++;
        while (b > a && d.charAt(b - 1) == '0') b--;
        return Math.max(1, b - a);
    }

    /** Writes a positive decimal in Python repr's layout (§4). */
    private static void spell(StringBuilder out, BigDecimal d) {
        BigDecimal stripped = d.stripTrailingZeros();
        String digits = stripped.unscaledValue().toString();
        int n = digits.length();
        // value = 0.d1..dn x 10^p  with  p = n - scale
        int p = n - stripped.scale();
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
