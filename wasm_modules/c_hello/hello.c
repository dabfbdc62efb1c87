/* An HTTP handler in C: GET /c/hello/{name} -> "Hello, {name}!" (text, or JSON with ?format=json). */
#include <stdio.h>

#define WASMKERNEL_HTTP
#include "wasmkernel.h"

static char out[512];

void wk_handle(const wk_request *req, wk_response *resp, const char **body, uint32_t *body_len) {
    wk_str name = wk_param(req, "name");
    if (name.len == 0 || name.len > 200) {
        wk_status(resp, 400);
        wk_add_header(resp, "content-type", "text/plain; charset=utf-8");
        *body = "name must be 1-200 bytes\n";
        *body_len = (uint32_t)strlen(*body);
        return;
    }
    int json = wk_eq(wk_query(req, "format"), "json");
    int n = json ? snprintf(out, sizeof out, "{\"message\": \"Hello, %.*s!\"}", (int)name.len, name.ptr)
                 : snprintf(out, sizeof out, "Hello, %.*s!\n", (int)name.len, name.ptr);
    wk_status(resp, 200);
    wk_add_header(resp, "content-type", json ? "application/json" : "text/plain; charset=utf-8");
    wk_add_header(resp, "x-guest-language", "c");
    *body = out;
    *body_len = (uint32_t)n;
}
