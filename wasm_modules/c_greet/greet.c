/* An HTTP handler in C using the host API: GET /c/greet/{name} -> "<greeting>, <name>!"
 * with `greeting` from the module's registry variables (vars = { greeting = "..." },
 * "Hello" if unset) and one log line per request (log = true). */
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
    wk_buf greeting;
    int found = wk_var("greeting", &greeting) == WK_OK;
    int n = snprintf(out, sizeof out, "%s, %.*s!\n", found ? (const char *)greeting.ptr : "Hello", (int)name.len, name.ptr);
    if (found) wk_buf_free(&greeting);

    char who[201];
    memcpy(who, name.ptr, name.len);
    who[name.len] = 0;
    wk_cpair fields[] = {{"name", who}, {"greeting", found ? "configured" : "default"}};
    wk_log_with(WK_INFO, "greeted", fields, 2);

    wk_status(resp, 200);
    wk_add_header(resp, "content-type", "text/plain; charset=utf-8");
    wk_add_header(resp, "x-guest-language", "c");
    *body = out;
    *body_len = n < (int)sizeof out ? (uint32_t)n : (uint32_t)sizeof out - 1;
}
