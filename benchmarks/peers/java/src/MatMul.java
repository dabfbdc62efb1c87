/** Shared kernel and JSON helpers for the Java peers (JettyPeer, JdkPeer). */
final class MatMul {
    private MatMul() {}

    static final String BAD_N = "{\"error\": \"n must be an integer in 1..5000\"}";
    static final String BAD_KERNEL = "{\"error\": \"unknown kernel (only \\\"naive\\\")\"}";

    /** Parses n; returns -1 unless it is a plain decimal integer in 1..5000. */
    static int parseN(String raw) {
        if (raw == null || raw.isEmpty() || raw.length() > 9) return -1;
        for (int i = 0; i < raw.length(); i++) {
            char ch = raw.charAt(i);
            if (ch < '0' || ch > '9') return -1;
        }
        int n = Integer.parseInt(raw);
        return (n >= 1 && n <= 5000) ? n : -1;
    }

    static double[][] build(int n) {
        double[] a = new double[n * n];
        double[] b = new double[n * n];
        for (long i = 0; i < n; i++) {
            for (long j = 0; j < n; j++) {
                long idx = i * n + j;
                a[(int) idx] = (idx % 7) * 0.5;
                b[(int) idx] = (idx % 5) * 0.25;
            }
        }
        return new double[][] {a, b};
    }

    /** Naive i-k-j: zero C; for i, for k, a = A[i][k], for j: C[i][j] += a*B[k][j]. */
    static void matmulNaive(double[] a, double[] b, double[] c, int n) {
        java.util.Arrays.fill(c, 0.0);
        for (int i = 0; i < n; i++) {
            int ci = i * n;
            for (int k = 0; k < n; k++) {
                double aik = a[ci + k];
                int bk = k * n;
                for (int j = 0; j < n; j++) {
                    c[ci + j] += aik * b[bk + j];
                }
            }
        }
    }

    /** A JSON number: integral values print without ".0"/exponent. */
    static String num(double d) {
        if (Double.isFinite(d) && d == Math.rint(d) && Math.abs(d) < 9.0e15) {
            return Long.toString((long) d);
        }
        return Double.toString(d); // e.g. 12.5 or 1.0E-4: both valid JSON
    }

    /** Runs one request's work and returns the JSON body. */
    static String run(int n) {
        double[][] ab = build(n);
        double[] c = new double[n * n];
        long t0 = System.nanoTime(); // monotonic
        matmulNaive(ab[0], ab[1], c, n);
        double ms = (System.nanoTime() - t0) / 1e6;
        double sum = 0.0;
        for (double v : c) sum += v;
        return "{\"n\": " + n + ", \"kernel\": \"naive\", \"checksum\": " + num(sum)
                + ", \"compute_ms\": " + num(ms) + "}";
    }

    static int port() {
        String p = System.getenv("PORT");
        try {
            return Integer.parseInt(p);
        } catch (NumberFormatException e) {
            System.err.println("PORT environment variable is required");
            System.exit(2);
            return -1;
        }
    }
}
