/* A filter in C (kind "filter"): a method guard and security headers.
 *
 * on_request: a method not in the variable `methods` (comma-separated,
 * default "GET,HEAD") is answered 405 problem+json with an `allow` header
 * and one log line; any other request continues, with `x-filtered-by: c_filter`
 * added to the request the route's handler sees.
 * on_response: adds `x-content-type-options: nosniff`, `referrer-policy:
 * no-referrer` and `x-upstream-status: <status>` (what the route answered). */
#include <stdio.h>

#define WASMKERNEL_FILTER
#define WASMKERNEL_FILTER_RESPONSE
#include "wasmkernel.h"

static char allowed[256], problem[512], upstream[16];

/* True if `method` is an item of the comma-separated `list`. */
static int listed(const char *list, wk_str method) {
    const char *item = list;
    while (*item) {
        const char *end = strchr(item, ',');
        size_t n = end ? (size_t)(end - item) : strlen(item);
        if (n == method.len && memcmp(item, method.ptr, n) == 0) return 1;
        if (!end) break;
        item = end + 1;
    }
    return 0;
}

void wk_on_request(const wk_filter_request *req, wk_decision *d) {
    wk_buf methods;
    if (wk_var("methods", &methods) == WK_OK) {
        snprintf(allowed, sizeof allowed, "%s", (const char *)methods.ptr);
        wk_buf_free(&methods);
    } else {
        snprintf(allowed, sizeof allowed, "GET,HEAD");
    }
    if (!listed(allowed, req->method)) {
        char method[16];
        snprintf(method, sizeof method, "%.*s", (int)(req->method.len < 15 ? req->method.len : 15), req->method.ptr);
        wk_cpair fields[] = {{"method", method}, {"allowed", allowed}};
        wk_log_with(WK_INFO, "method refused by c_filter", fields, 2);
        snprintf(problem, sizeof problem, "{\"type\":\"about:blank\",\"title\":\"Method Not Allowed\",\"status\":405,\"detail\":\"allowed: %s\"}", allowed);
        wk_respond(d, 405, "application/problem+json", problem);
        wk_respond_header(d, "allow", allowed);
        return;
    }
    wk_edit_add(&d->request, "x-filtered-by", "c_filter");
}

void wk_on_response(const wk_filter_response *resp, wk_edits *edits) {
    snprintf(upstream, sizeof upstream, "%u", resp->status);
    wk_edit_add(edits, "x-content-type-options", "nosniff");
    wk_edit_add(edits, "referrer-policy", "no-referrer");
    wk_edit_add(edits, "x-upstream-status", upstream);
}
