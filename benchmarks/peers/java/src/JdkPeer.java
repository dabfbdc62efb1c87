import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Executors;

/** JDK-only peer (com.sun.net.httpserver + a thread pool): needs no jars at all. */
public final class JdkPeer {
    private static void send(HttpExchange ex, int status, String type, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", type);
        ex.sendResponseHeaders(status, bytes.length);
        try (OutputStream os = ex.getResponseBody()) {
            os.write(bytes);
        }
    }

    /** First value of a query parameter, or null. */
    private static String param(String query, String name) {
        if (query == null) return null;
        for (String pair : query.split("&")) {
            int eq = pair.indexOf('=');
            String k = URLDecoder.decode(eq < 0 ? pair : pair.substring(0, eq), StandardCharsets.UTF_8);
            if (k.equals(name)) {
                return eq < 0 ? "" : URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8);
            }
        }
        return null;
    }

    private static void handle(HttpExchange ex) throws IOException {
        try {
            String path = ex.getRequestURI().getPath();
            if (!"GET".equals(ex.getRequestMethod())) {
                send(ex, 405, "application/json", "{\"error\": \"method not allowed\"}");
            } else if ("/hello".equals(path)) {
                send(ex, 200, "text/plain; charset=utf-8", "Hello, world!");
            } else if ("/matmul".equals(path)) {
                String query = ex.getRequestURI().getRawQuery();
                int n = MatMul.parseN(param(query, "n"));
                String kernel = param(query, "kernel");
                if (n < 0) {
                    send(ex, 422, "application/json", MatMul.BAD_N);
                } else if (kernel != null && !"naive".equals(kernel)) {
                    send(ex, 422, "application/json", MatMul.BAD_KERNEL);
                } else {
                    send(ex, 200, "application/json", MatMul.run(n));
                }
            } else {
                send(ex, 404, "application/json", "{\"error\": \"not found\"}");
            }
        } finally {
            ex.close();
        }
    }

    public static void main(String[] args) throws IOException {
        int port = MatMul.port();
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 1024);
        server.createContext("/", JdkPeer::handle);
        int threads = Math.max(16, 4 * Runtime.getRuntime().availableProcessors());
        server.setExecutor(Executors.newFixedThreadPool(threads));
        server.start();
    }
}
