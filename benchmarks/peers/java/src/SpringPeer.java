import java.io.File;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.catalina.Context;
import org.apache.catalina.connector.Connector;
import org.apache.catalina.startup.Tomcat;
import org.springframework.context.annotation.Bean;
import org.springframework.http.HttpStatus;
import org.springframework.http.ResponseEntity;
import org.springframework.http.converter.HttpMessageConverter;
import org.springframework.http.converter.StringHttpMessageConverter;
import org.springframework.http.converter.json.MappingJackson2HttpMessageConverter;
import org.springframework.stereotype.Component;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RequestMethod;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.context.support.AnnotationConfigWebApplicationContext;
import org.springframework.web.servlet.DispatcherServlet;
import org.springframework.web.servlet.mvc.method.annotation.RequestMappingHandlerAdapter;
import org.springframework.web.servlet.mvc.method.annotation.RequestMappingHandlerMapping;

/**
 * Spring MVC 4.3 (Debian's Spring Framework 4.3.30) on an embedded Tomcat 9: the stack Spring Boot
 * embeds, assembled by hand because Spring Boot itself cannot be fetched here (no Maven registry).
 *
 * <p>A {@code @RestController} behind Spring's {@code DispatcherServlet}. {@code @EnableWebMvc} cannot
 * be used: Debian's repackaged ASM cannot CGLIB-enhance {@code @Configuration} classes, so the MVC
 * infrastructure (handler mapping, handler adapter with Jackson for JSON) is declared as plain
 * {@code @Bean} methods of a {@code @Component} ("lite" mode, no enhancement).
 */
public final class SpringPeer {
    private SpringPeer() {}

    /** The endpoints: the benchmark contract (see ../README.md). */
    @RestController
    public static class Endpoints {
        @RequestMapping(value = "/hello", method = RequestMethod.GET, produces = "text/plain;charset=UTF-8")
        public String hello() {
            return "Hello, world!";
        }

        @RequestMapping(value = "/matmul", method = RequestMethod.GET, produces = "application/json")
        public ResponseEntity<Map<String, Object>> matmul(
                @RequestParam(value = "n", required = false) String rawN,
                @RequestParam(value = "kernel", required = false) String kernel) {
            int n = MatMul.parseN(rawN);
            if (n < 0) {
                return error("n must be an integer in 1..5000");
            }
            if (kernel != null && !"naive".equals(kernel)) {
                return error("unknown kernel (only \"naive\")");
            }
            double[][] ab = MatMul.build(n);
            double[] c = new double[n * n];
            long t0 = System.nanoTime(); // monotonic
            MatMul.matmulNaive(ab[0], ab[1], c, n);
            double ms = (System.nanoTime() - t0) / 1e6;
            double sum = 0.0;
            for (double v : c) sum += v;
            Map<String, Object> body = new LinkedHashMap<>();
            body.put("n", n);
            body.put("kernel", "naive");
            body.put("checksum", sum);
            body.put("compute_ms", ms);
            return new ResponseEntity<>(body, HttpStatus.OK);
        }

        private static ResponseEntity<Map<String, Object>> error(String message) {
            Map<String, Object> body = new LinkedHashMap<>();
            body.put("error", message);
            return new ResponseEntity<>(body, HttpStatus.UNPROCESSABLE_ENTITY);
        }
    }

    /** Spring MVC's request-mapping infrastructure, registered directly instead of {@code @EnableWebMvc}. */
    @Component
    public static class Mvc {
        @Bean
        public RequestMappingHandlerMapping requestMappingHandlerMapping() {
            return new RequestMappingHandlerMapping();
        }

        @Bean
        public RequestMappingHandlerAdapter requestMappingHandlerAdapter() {
            RequestMappingHandlerAdapter adapter = new RequestMappingHandlerAdapter();
            List<HttpMessageConverter<?>> converters = new ArrayList<>();
            StringHttpMessageConverter text = new StringHttpMessageConverter();
            text.setWriteAcceptCharset(false); // as Spring Boot does: no 2 kB Accept-Charset header per answer
            converters.add(text);
            converters.add(new MappingJackson2HttpMessageConverter());
            adapter.setMessageConverters(converters);
            return adapter;
        }
    }

    public static void main(String[] args) throws Exception {
        int port = MatMul.port();
        AnnotationConfigWebApplicationContext spring = new AnnotationConfigWebApplicationContext();
        spring.register(Mvc.class, Endpoints.class);

        Tomcat tomcat = new Tomcat();
        File base = new File(System.getProperty("java.io.tmpdir"), "spring-peer-" + port);
        tomcat.setBaseDir(base.getAbsolutePath());
        Connector connector = tomcat.getConnector();
        connector.setPort(port);
        connector.setProperty("address", "127.0.0.1");
        Context context = tomcat.addContext("", base.getAbsolutePath());
        Tomcat.addServlet(context, "dispatcher", new DispatcherServlet(spring)).setLoadOnStartup(1);
        context.addServletMappingDecoded("/", "dispatcher");
        tomcat.start();
        tomcat.getServer().await();
    }
}
