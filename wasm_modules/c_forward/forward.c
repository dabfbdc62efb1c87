/* A harmless-looking C handler that passes visitor input to the host API
 * (a fixture of tests/reliability/test_host_boundary.py):
 *   GET /fw/lang          -> GET <upstream>/lang with the visitor's Accept-Language forwarded
 *   GET /fw/item/{id}     -> GET <upstream>/items/<id>   (the path parameter interpolated)
 *   POST /fw/kv/{key}     -> kv_set(key, body), then kv_incr(key + ".n", 1)
 *   POST /fw/log?n=N      -> logs the body N times, with guest fields named like the host's own
 * `upstream` comes from the module's variables. The answer is 200 with the
 * upstream's status and body, or 502 with the host's error code and message:
 * whatever the visitor sends, a host call may fail, never the host. */
#include <stdio.h>

#define WASMKERNEL_HTTP
#include "wasmkernel.h"

static char out[8192];
static char url[4096];
static char value[4096];

static void text(wk_response *resp, uint32_t status, const char **body, uint32_t *body_len, int n) {
    wk_status(resp, status);
    wk_add_header(resp, "content-type", "text/plain; charset=utf-8");
    *body = out;
    *body_len = n < 0 ? 0 : n < (int)sizeof out ? (uint32_t)n : (uint32_t)sizeof out - 1;
}

static int copy(char *dst, size_t cap, wk_str s) {
    if (s.len >= cap) return -1;
    memcpy(dst, s.ptr, s.len);
    dst[s.len] = 0;
    return 0;
}

static void fetch(const wk_cpair *headers, uint32_t n, wk_response *resp, const char **body, uint32_t *body_len) {
    wk_http_response reply;
    int code = wk_http_request("GET", url, headers, n, "", 0, 0, &reply);
    if (code != WK_OK) {
        text(resp, 502, body, body_len, snprintf(out, sizeof out, "host error %d: %s\n", code, wk_error_message()));
        return;
    }
    text(resp, 200, body, body_len, snprintf(out, sizeof out, "%u %.*s", reply.status, (int)reply.body.len, reply.body.ptr));
    wk_buf_free(&reply.raw);
}

void wk_handle(const wk_request *req, wk_response *resp, const char **body, uint32_t *body_len) {
    wk_buf upstream;
    if (wk_var("upstream", &upstream) != WK_OK) {
        text(resp, 500, body, body_len, snprintf(out, sizeof out, "no upstream variable\n"));
        return;
    }
    wk_str id = wk_param(req, "id"), key = wk_param(req, "key");
    if (wk_eq(req->method, "POST") && wk_query(req, "n").len) {
        wk_str count = wk_query(req, "n");
        int n = 0;
        for (uint32_t i = 0; i < count.len && i < 6; i++) n = n * 10 + (count.ptr[i] - '0');
        if (copy(value, sizeof value, (wk_str){req->body.ptr, req->body.len < sizeof value - 1 ? req->body.len : (uint32_t)sizeof value - 1}) != 0) value[0] = 0;
        wk_cpair fields[] = {{"_record", "forged"}, {"exception", "forged"}, {"status", "forged"}, {"event", "forged"}, {"level", "forged"}};
        for (int i = 0; i < n; i++) wk_log_with(WK_INFO, value, fields, 5);
        text(resp, 200, body, body_len, snprintf(out, sizeof out, "logged %d\n", n));
    } else if (wk_eq(req->method, "POST") && key.len) {
        char name[600];
        int64_t count = 0;
        if (copy(name, sizeof name - 3, key) != 0) {
            text(resp, 400, body, body_len, snprintf(out, sizeof out, "key too long\n"));
        } else {
            int code = wk_kv_set(name, key.len, req->body.ptr, req->body.len);
            strcat(name, ".n");
            if (code == WK_OK) code = wk_kv_incr(name, key.len + 2, 1, &count);
            if (code == WK_OK) text(resp, 200, body, body_len, snprintf(out, sizeof out, "%lld\n", (long long)count));
            else text(resp, 502, body, body_len, snprintf(out, sizeof out, "host error %d: %s\n", code, wk_error_message()));
        }
    } else if (id.len) {
        int n = snprintf(url, sizeof url, "%s/items/%.*s", (const char *)upstream.ptr, (int)id.len, id.ptr);
        if (n <= 0 || n >= (int)sizeof url) text(resp, 400, body, body_len, snprintf(out, sizeof out, "id too long\n"));
        else fetch(0, 0, resp, body, body_len);
    } else {
        snprintf(url, sizeof url, "%s/lang", (const char *)upstream.ptr);
        wk_str lang = wk_header(req, "accept-language");
        if (copy(value, sizeof value, lang) != 0) {
            text(resp, 400, body, body_len, snprintf(out, sizeof out, "header too long\n"));
        } else {
            wk_cpair headers[] = {{"accept-language", value}};
            fetch(headers, lang.len ? 1 : 0, resp, body, body_len);
        }
    }
    wk_buf_free(&upstream);
}
