import java.nio.charset.StandardCharsets;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.Fields;
import org.eclipse.jetty.util.thread.QueuedThreadPool;

/** Jetty 12 (core API, plain Handler.Abstract) peer for the /matmul benchmark. */
public final class JettyPeer extends Handler.Abstract {
    private static void send(Response response, Callback callback, int status, String type, String body) {
        response.setStatus(status);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, type);
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        response.getHeaders().put(HttpHeader.CONTENT_LENGTH, (long) bytes.length);
        response.write(true, java.nio.ByteBuffer.wrap(bytes), callback);
    }

    @Override
    public boolean handle(Request request, Response response, Callback callback) {
        String path = Request.getPathInContext(request);
        if (!"GET".equals(request.getMethod())) {
            send(response, callback, 405, "application/json", "{\"error\": \"method not allowed\"}");
            return true;
        }
        if ("/hello".equals(path)) {
            send(response, callback, 200, "text/plain; charset=utf-8", "Hello, world!");
            return true;
        }
        if ("/matmul".equals(path)) {
            Fields q = Request.extractQueryParameters(request);
            int n = MatMul.parseN(q.getValue("n"));
            String kernel = q.getValue("kernel");
            if (n < 0) {
                send(response, callback, 422, "application/json", MatMul.BAD_N);
            } else if (kernel != null && !"naive".equals(kernel)) {
                send(response, callback, 422, "application/json", MatMul.BAD_KERNEL);
            } else {
                send(response, callback, 200, "application/json", MatMul.run(n));
            }
            return true;
        }
        send(response, callback, 404, "application/json", "{\"error\": \"not found\"}");
        return true;
    }

    public static void main(String[] args) throws Exception {
        int port = MatMul.port();
        Server server = new Server(new QueuedThreadPool());
        HttpConfiguration config = new HttpConfiguration();
        config.setSendServerVersion(false);
        ServerConnector connector = new ServerConnector(server, new HttpConnectionFactory(config));
        connector.setHost("127.0.0.1");
        connector.setPort(port);
        server.addConnector(connector);
        server.setHandler(new JettyPeer());
        server.start();
        server.join();
    }
}
