/* wasmkernel.h: the WasmKernel guest ABI for C (clang --target=wasm32-wasi).
 *
 * One header, no library. Include it in exactly one .c file of a module:
 *
 *   - it exports `alloc(size) -> ptr` and `dealloc(ptr, size)` (over malloc/free),
 *     the buffers the host copies requests and arrays into;
 *   - with WASMKERNEL_HTTP defined before the include, it also exports
 *     `handle(req_ptr, req_len) -> i64` which decodes the request and calls
 *         void wk_handle(const wk_request *req, wk_response *resp, const char **body, uint32_t *body_len);
 *     that you write, then returns the encoded response;
 *   - with WASMKERNEL_FILTER (kind "filter", WebAssembly middleware), it exports
 *     `on_request`, which calls
 *         void wk_on_request(const wk_filter_request *req, wk_decision *decision);
 *     (leave the decision as it is to continue, add header edits with
 *     wk_edit_add / wk_edit_remove, or answer at once with wk_respond), and with
 *     WASMKERNEL_FILTER_RESPONSE also `on_response`, which calls
 *         void wk_on_response(const wk_filter_response *resp, wk_edits *edits);
 *
 * The HTTP wire format (docs/wasm-abi.md), integers u32 little-endian,
 * field(x) = u32 length + bytes:
 *   request : field(method) field(path) field(query)
 *             u32 n x (field(name) field(value))   route params
 *             u32 n x (field(name) field(value))   headers, names lower-case
 *             field(body)
 *   response: u32 status, u32 n x (field(name) field(value)), field(body)
 *
 * The host API (import module `wasmkernel`, ABI v1, docs/wasm-abi.md) has the
 * shape of the Rust SDK's `host` module: wk_log/wk_info, wk_var, wk_kv_get/
 * set/delete/list, wk_http_request/wk_http_get. Each capability must be
 * granted in the registry (`log = true`, `vars = {...}`, `kv = {...}`,
 * `http = { allow = [...] }`); an ungranted call traps. Functions returning
 * int give WK_OK (0) or an error code (WK_NOT_FOUND, WK_QUOTA, WK_INVALID,
 * WK_HTTP, or another), the host's message then in wk_error_message().
 * Results are malloc'd wk_buf values: release them with wk_buf_free.
 * Only the host functions a module calls become imports.
 *
 * Build a reactor (the host runs `_initialize` once per instance):
 *   clang-14 --target=wasm32-wasi -O2 -mexec-model=reactor -I wasm_modules/sdk-c x.c -o x.wasm
 * wasm_modules/build.sh does this for a folder holding *.c files.
 */
#ifndef WASMKERNEL_H
#define WASMKERNEL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WK_EXPORT(name) __attribute__((export_name(name)))

/* A byte string inside the request buffer (not NUL-terminated). */
typedef struct {
    const char *ptr;
    uint32_t len;
} wk_str;

typedef struct {
    wk_str name, value;
} wk_pair;

#define WK_MAX_PAIRS 64

typedef struct {
    wk_str method, path, query, body;
    uint32_t nparams, nheaders;
    wk_pair params[WK_MAX_PAIRS];
    wk_pair headers[WK_MAX_PAIRS];
} wk_request;

/* A response being built: status, then headers, then the body. */
typedef struct {
    uint8_t *buf;
    uint32_t len, cap, nheaders;
    int failed;
} wk_response;

WK_EXPORT("alloc") void *alloc(uint32_t size) { return malloc(size ? size : 1); }
WK_EXPORT("dealloc") void dealloc(void *ptr, uint32_t size) {
    (void)size;
    free(ptr);
}

/* True if `s` equals the NUL-terminated `text`. */
static inline int wk_eq(wk_str s, const char *text) {
    uint32_t n = (uint32_t)strlen(text);
    return s.len == n && memcmp(s.ptr, text, n) == 0;
}

static inline wk_str wk_lookup(const wk_pair *pairs, uint32_t n, const char *name) {
    for (uint32_t i = 0; i < n; i++)
        if (wk_eq(pairs[i].name, name)) return pairs[i].value;
    return (wk_str){0, 0};
}

/* The route parameter / header `name` (lower-case), or {0, 0}. */
static inline wk_str wk_param(const wk_request *r, const char *name) { return wk_lookup(r->params, r->nparams, name); }
static inline wk_str wk_header(const wk_request *r, const char *name) { return wk_lookup(r->headers, r->nheaders, name); }

/* The value of `key` in the query string (undecoded), or {0, 0}. */
static inline wk_str wk_query(const wk_request *r, const char *key) {
    uint32_t klen = (uint32_t)strlen(key), i = 0;
    while (i < r->query.len) {
        uint32_t end = i;
        while (end < r->query.len && r->query.ptr[end] != '&') end++;
        if (end - i > klen && r->query.ptr[i + klen] == '=' && memcmp(r->query.ptr + i, key, klen) == 0)
            return (wk_str){r->query.ptr + i + klen + 1, end - i - klen - 1};
        i = end + 1;
    }
    return (wk_str){0, 0};
}

static inline int wk_u32(const uint8_t *buf, uint32_t len, uint32_t *pos, uint32_t *out) {
    if (len - *pos < 4 || *pos > len) return -1;
    *out = (uint32_t)buf[*pos] | (uint32_t)buf[*pos + 1] << 8 | (uint32_t)buf[*pos + 2] << 16 | (uint32_t)buf[*pos + 3] << 24;
    *pos += 4;
    return 0;
}

static inline int wk_field(const uint8_t *buf, uint32_t len, uint32_t *pos, wk_str *out) {
    uint32_t n;
    if (wk_u32(buf, len, pos, &n) || len - *pos < n) return -1;
    *out = (wk_str){(const char *)buf + *pos, n};
    *pos += n;
    return 0;
}

static inline int wk_pairs(const uint8_t *buf, uint32_t len, uint32_t *pos, wk_pair *pairs, uint32_t *n) {
    if (wk_u32(buf, len, pos, n) || *n > WK_MAX_PAIRS) return -1;
    for (uint32_t i = 0; i < *n; i++)
        if (wk_field(buf, len, pos, &pairs[i].name) || wk_field(buf, len, pos, &pairs[i].value)) return -1;
    return 0;
}

/* Decode a request; 0 on success. The strings point into `buf`. */
static inline int wk_decode_request(const uint8_t *buf, uint32_t len, wk_request *r) {
    uint32_t pos = 0;
    if (wk_field(buf, len, &pos, &r->method) || wk_field(buf, len, &pos, &r->path) || wk_field(buf, len, &pos, &r->query)) return -1;
    if (wk_pairs(buf, len, &pos, r->params, &r->nparams) || wk_pairs(buf, len, &pos, r->headers, &r->nheaders)) return -1;
    return wk_field(buf, len, &pos, &r->body);
}

static inline void wk_put(wk_response *resp, const void *data, uint32_t n) {
    if (resp->failed) return;
    if (resp->len + n > resp->cap) {
        uint32_t cap = resp->cap ? resp->cap : 256;
        while (cap < resp->len + n) cap *= 2;
        uint8_t *grown = realloc(resp->buf, cap);
        if (!grown) {
            resp->failed = 1;
            return;
        }
        resp->buf = grown;
        resp->cap = cap;
    }
    memcpy(resp->buf + resp->len, data, n);
    resp->len += n;
}

static inline void wk_put_u32(wk_response *resp, uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    wk_put(resp, b, 4);
}

static inline void wk_put_field(wk_response *resp, const void *data, uint32_t n) {
    wk_put_u32(resp, n);
    wk_put(resp, data, n);
}

/* Set the status (call first; the header count follows it). */
static inline void wk_status(wk_response *resp, uint32_t status) {
    resp->len = 0;
    resp->nheaders = 0;
    wk_put_u32(resp, status);
    wk_put_u32(resp, 0);
}

static inline void wk_add_header(wk_response *resp, const char *name, const char *value) {
    wk_put_field(resp, name, (uint32_t)strlen(name));
    wk_put_field(resp, value, (uint32_t)strlen(value));
    resp->nheaders++;
}

/* Finish with the body: returns the packed (ptr << 32 | len) `handle` returns. */
static inline uint64_t wk_finish(wk_response *resp, const void *body, uint32_t n) {
    wk_put_field(resp, body, n);
    if (resp->failed || resp->len < 8) return 0;
    memcpy(resp->buf + 4, (uint8_t[4]){(uint8_t)resp->nheaders, (uint8_t)(resp->nheaders >> 8), (uint8_t)(resp->nheaders >> 16), (uint8_t)(resp->nheaders >> 24)}, 4);
    return (uint64_t)(uintptr_t)resp->buf << 32 | resp->len;
}


/* ---- host API (import module "wasmkernel", ABI v1) ------------------------ */

#define WK_IMPORT(name) __attribute__((import_module("wasmkernel"), import_name(name)))

WK_IMPORT("abi_version") int64_t wk__abi_version(void);
WK_IMPORT("log") int64_t wk__log(int32_t level, const void *msg, uint32_t msg_len, const void *fields, uint32_t fields_len);
WK_IMPORT("var_get") int64_t wk__var_get(const void *name, uint32_t name_len);
WK_IMPORT("kv_get") int64_t wk__kv_get(const void *key, uint32_t key_len);
WK_IMPORT("kv_set") int64_t wk__kv_set(const void *key, uint32_t key_len, const void *value, uint32_t value_len);
WK_IMPORT("kv_delete") int64_t wk__kv_delete(const void *key, uint32_t key_len);
WK_IMPORT("kv_list") int64_t wk__kv_list(const void *prefix, uint32_t prefix_len);
WK_IMPORT("kv_incr") int64_t wk__kv_incr(const void *key, uint32_t key_len, int32_t delta);
WK_IMPORT("http_request") int64_t wk__http_request(const void *req, uint32_t req_len);
WK_IMPORT("result_read") int64_t wk__result_read(void *ptr, uint32_t len);

/* Error codes of the host API (a host function returns -code). */
enum { WK_OK = 0, WK_NOT_FOUND = 1, WK_QUOTA = 2, WK_INVALID = 3, WK_HTTP = 4, WK_UNAVAILABLE = 5, WK_NO_MEMORY = 100 };

/* Log levels of wk_log. */
typedef enum { WK_DEBUG = 0, WK_INFO = 1, WK_WARNING = 2, WK_ERROR = 3 } wk_level;

/* A result owned by the guest (malloc'd, NUL-terminated for convenience). */
typedef struct {
    uint8_t *ptr;
    uint32_t len;
} wk_buf;

static inline void wk_buf_free(wk_buf *b) {
    free(b->ptr);
    b->ptr = 0;
    b->len = 0;
}

static char wk__error[4096];

/* The host's message for the last failed call ("" if none). */
static inline const char *wk_error_message(void) { return wk__error; }

/* Collects a host call's result: >= 0 → `out` gets the pending bytes; < 0 → the error code. */
static inline int wk__result(int64_t code, wk_buf *out) {
    if (code < 0) {
        int64_t n = wk__result_read(wk__error, sizeof wk__error - 1);
        wk__error[n > 0 ? n : 0] = 0;
        if (out) *out = (wk_buf){0, 0};
        return (int)-code;
    }
    wk__error[0] = 0;
    uint8_t *data = malloc((size_t)code + 1);
    if (!data) {
        wk__result_read(0, 0); /* drop the pending result */
        return WK_NO_MEMORY;
    }
    int64_t n = code ? wk__result_read(data, (uint32_t)code) : 0;
    data[n] = 0;
    if (out) *out = (wk_buf){data, (uint32_t)n};
    else free(data);
    return WK_OK;
}

/* The host's ABI version (1). */
static inline int64_t wk_abi_version(void) { return wk__abi_version(); }

/* A name and a value as NUL-terminated strings: log fields, outbound request headers. */
typedef struct {
    const char *name, *value;
} wk_cpair;

/* One log line (grant: `log = true`) with `n` key-value fields. */
static inline void wk_log_with(wk_level level, const char *message, const wk_cpair *fields, uint32_t n) {
    wk_response enc = {0};
    wk_put_u32(&enc, n);
    for (uint32_t i = 0; i < n; i++) {
        wk_put_field(&enc, fields[i].name, (uint32_t)strlen(fields[i].name));
        wk_put_field(&enc, fields[i].value, (uint32_t)strlen(fields[i].value));
    }
    wk__log((int32_t)level, message, (uint32_t)strlen(message), enc.failed ? 0 : enc.buf, enc.failed ? 0 : enc.len);
    free(enc.buf);
}

static inline void wk_log(wk_level level, const char *message) { wk_log_with(level, message, 0, 0); }
static inline void wk_info(const char *message) { wk_log_with(WK_INFO, message, 0, 0); }

/* The variable `name` of the module's `vars` table (grant: `vars = {...}`):
 * WK_OK with `*value` set, or WK_NOT_FOUND. */
static inline int wk_var(const char *name, wk_buf *value) { return wk__result(wk__var_get(name, (uint32_t)strlen(name)), value); }

/* Key-value store (grant: `kv = {...}`), in the module's namespace. */
static inline int wk_kv_get(const void *key, uint32_t key_len, wk_buf *value) { return wk__result(wk__kv_get(key, key_len), value); }
static inline int wk_kv_set(const void *key, uint32_t key_len, const void *value, uint32_t value_len) {
    return wk__result(wk__kv_set(key, key_len, value, value_len), 0);
}
/* Deletes `key`; `*existed` (may be NULL) says whether it was there. */
static inline int wk_kv_delete(const void *key, uint32_t key_len, int *existed) {
    wk_buf out;
    int code = wk__result(wk__kv_delete(key, key_len), &out);
    if (existed) *existed = code == WK_OK && out.len > 0 && out.ptr[0] == 1;
    if (code == WK_OK) wk_buf_free(&out);
    return code;
}
/* Adds `delta` to the counter `key` (absent: 0) atomically across workers; the new value in `*value`. */
static inline int wk_kv_incr(const void *key, uint32_t key_len, int32_t delta, int64_t *value) {
    wk_buf out;
    int code = wk__result(wk__kv_incr(key, key_len, delta), &out);
    if (code != WK_OK) return code;
    char *end;
    long long v = strtoll((const char *)out.ptr, &end, 10);
    int bad = out.len == 0 || *end != 0;
    wk_buf_free(&out);
    if (bad) return WK_INVALID;
    if (value) *value = v;
    return WK_OK;
}
/* Keys starting with `prefix` (at most 1000, sorted) into `*keys`; walk them with wk_kv_next. */
static inline int wk_kv_list(const void *prefix, uint32_t prefix_len, wk_buf *keys) { return wk__result(wk__kv_list(prefix, prefix_len), keys); }
/* The next key of a wk_kv_list result (start with *pos = 0); 0 at the end. */
static inline int wk_kv_next(const wk_buf *keys, uint32_t *pos, wk_str *key) {
    if (*pos == 0) *pos = 4; /* skip the count */
    return wk_field(keys->ptr, keys->len, pos, key) == 0;
}

/* A response from an allowed origin: `headers` and `body` point into `raw`. */
typedef struct {
    uint32_t status, nheaders;
    wk_pair headers[WK_MAX_PAIRS];
    wk_str body;
    wk_buf raw;
} wk_http_response;

/* Outbound request (grant: `http = { allow = [...] }`), performed by the host;
 * `headers` are `n` pairs of NUL-terminated strings, `timeout_ms = 0` uses the
 * grant's timeout. Release `resp->raw` with wk_buf_free. */
static inline int wk_http_request(const char *method, const char *url, const wk_cpair *headers, uint32_t n, const void *body, uint32_t body_len,
                                  uint32_t timeout_ms, wk_http_response *resp) {
    wk_response enc = {0};
    wk_put_field(&enc, method, (uint32_t)strlen(method));
    wk_put_field(&enc, url, (uint32_t)strlen(url));
    wk_put_u32(&enc, n);
    for (uint32_t i = 0; i < n; i++) {
        wk_put_field(&enc, headers[i].name, (uint32_t)strlen(headers[i].name));
        wk_put_field(&enc, headers[i].value, (uint32_t)strlen(headers[i].value));
    }
    wk_put_field(&enc, body, body_len);
    wk_put_u32(&enc, timeout_ms);
    if (enc.failed) {
        free(enc.buf);
        return WK_NO_MEMORY;
    }
    int code = wk__result(wk__http_request(enc.buf, enc.len), &resp->raw);
    free(enc.buf);
    if (code != WK_OK) return code;
    uint32_t pos = 0;
    if (wk_u32(resp->raw.ptr, resp->raw.len, &pos, &resp->status) || wk_pairs(resp->raw.ptr, resp->raw.len, &pos, resp->headers, &resp->nheaders) ||
        wk_field(resp->raw.ptr, resp->raw.len, &pos, &resp->body)) {
        wk_buf_free(&resp->raw);
        strcpy(wk__error, "malformed response from the host");
        return WK_INVALID;
    }
    return WK_OK;
}

/* `GET url`. */
static inline int wk_http_get(const char *url, wk_http_response *resp) { return wk_http_request("GET", url, 0, 0, "", 0, 0, resp); }

/* ---- filters (kind "filter"; wire format in docs/wasm-abi.md) ---------------- */

#define WK_MAX_EDITS 32

/* Header edits: `remove` (names) first, then `add` (appended); remove + add replaces. */
typedef struct {
    wk_cpair add[WK_MAX_EDITS];
    const char *remove[WK_MAX_EDITS];
    uint32_t nadd, nremove;
} wk_edits;

/* Appends a header edit; -1 when WK_MAX_EDITS are already there. */
static inline int wk_edit_add(wk_edits *e, const char *name, const char *value) {
    if (e->nadd >= WK_MAX_EDITS) return -1;
    e->add[e->nadd++] = (wk_cpair){name, value};
    return 0;
}
static inline int wk_edit_remove(wk_edits *e, const char *name) {
    if (e->nremove >= WK_MAX_EDITS) return -1;
    e->remove[e->nremove++] = name;
    return 0;
}

/* The request a filter sees (credential headers withheld unless granted);
 * `route` is the guarded route's name, `body` set only when has_body. */
typedef struct {
    wk_str method, path, query, route, body;
    uint32_t has_body, nheaders;
    wk_pair headers[WK_MAX_PAIRS];
} wk_filter_request;

/* The response as on_response sees it. */
typedef struct {
    wk_str method, path;
    uint32_t status, nheaders;
    wk_pair headers[WK_MAX_PAIRS];
} wk_filter_response;

/* What on_request answers: continue (the default) with edits of the request's and
 * the response's headers, or respond now (the route's handler is not called). */
typedef struct {
    int respond;
    wk_edits request, response;
    uint32_t status;
    wk_cpair headers[WK_MAX_EDITS];
    uint32_t nheaders;
    const char *body;
    uint32_t body_len;
} wk_decision;

/* Answer now with `status`, a content type and `body` (NUL-terminated, alive until wk_on_request returns). */
static inline void wk_respond(wk_decision *d, uint32_t status, const char *content_type, const char *body) {
    d->respond = 1;
    d->status = status;
    d->nheaders = 0;
    d->headers[d->nheaders++] = (wk_cpair){"content-type", content_type};
    d->body = body;
    d->body_len = (uint32_t)strlen(body);
}

/* A header of the respond answer besides its content type; -1 when full. */
static inline int wk_respond_header(wk_decision *d, const char *name, const char *value) {
    if (d->nheaders >= WK_MAX_EDITS) return -1;
    d->headers[d->nheaders++] = (wk_cpair){name, value};
    return 0;
}

/* The header `name` (lower-case) of a filter's request, or {0, 0}. */
static inline wk_str wk_filter_header(const wk_filter_request *r, const char *name) { return wk_lookup(r->headers, r->nheaders, name); }

static inline void wk__put_cpairs(wk_response *out, const wk_cpair *pairs, uint32_t n) {
    wk_put_u32(out, n);
    for (uint32_t i = 0; i < n; i++) {
        wk_put_field(out, pairs[i].name, (uint32_t)strlen(pairs[i].name));
        wk_put_field(out, pairs[i].value, (uint32_t)strlen(pairs[i].value));
    }
}

static inline void wk__put_edits(wk_response *out, const wk_edits *e) {
    wk__put_cpairs(out, e->add, e->nadd);
    wk_put_u32(out, e->nremove);
    for (uint32_t i = 0; i < e->nremove; i++) wk_put_field(out, e->remove[i], (uint32_t)strlen(e->remove[i]));
}

static inline uint64_t wk__packed(wk_response *out) {
    if (out->failed) return 0;
    return (uint64_t)(uintptr_t)out->buf << 32 | out->len;
}

static inline int wk_decode_filter_request(const uint8_t *buf, uint32_t len, wk_filter_request *r) {
    uint32_t pos = 0;
    if (wk_field(buf, len, &pos, &r->method) || wk_field(buf, len, &pos, &r->path) || wk_field(buf, len, &pos, &r->query) ||
        wk_field(buf, len, &pos, &r->route))
        return -1;
    if (wk_pairs(buf, len, &pos, r->headers, &r->nheaders) || wk_u32(buf, len, &pos, &r->has_body) || wk_field(buf, len, &pos, &r->body)) return -1;
    return pos == len ? 0 : -1;
}

static inline int wk_decode_filter_response(const uint8_t *buf, uint32_t len, wk_filter_response *r) {
    uint32_t pos = 0;
    if (wk_field(buf, len, &pos, &r->method) || wk_field(buf, len, &pos, &r->path) || wk_u32(buf, len, &pos, &r->status)) return -1;
    if (wk_pairs(buf, len, &pos, r->headers, &r->nheaders)) return -1;
    return pos == len ? 0 : -1;
}

#ifdef WASMKERNEL_FILTER
void wk_on_request(const wk_filter_request *req, wk_decision *decision);

WK_EXPORT("on_request") uint64_t on_request(const uint8_t *ptr, uint32_t len) {
    static wk_filter_request req;
    static wk_decision d;
    memset(&d, 0, sizeof d);
    if (wk_decode_filter_request(ptr, len, &req)) wk_respond(&d, 400, "text/plain", "bad request: malformed filter input\n");
    else wk_on_request(&req, &d);
    wk_response out = {0};
    if (d.respond) {
        wk_put_u32(&out, 1);
        wk_put_u32(&out, d.status);
        wk__put_cpairs(&out, d.headers, d.nheaders);
        wk_put_field(&out, d.body ? d.body : "", d.body ? d.body_len : 0);
    } else {
        wk_put_u32(&out, 0);
        wk__put_edits(&out, &d.request);
        wk__put_edits(&out, &d.response);
    }
    return wk__packed(&out);
}
#endif

#ifdef WASMKERNEL_FILTER_RESPONSE
void wk_on_response(const wk_filter_response *resp, wk_edits *edits);

WK_EXPORT("on_response") uint64_t on_response(const uint8_t *ptr, uint32_t len) {
    static wk_filter_response resp;
    static wk_edits edits;
    memset(&edits, 0, sizeof edits);
    if (!wk_decode_filter_response(ptr, len, &resp)) wk_on_response(&resp, &edits);
    wk_response out = {0};
    wk__put_edits(&out, &edits);
    return wk__packed(&out);
}
#endif

#ifdef WASMKERNEL_HTTP
/* Write the response: wk_status, wk_add_header..., then set `*body`/`*body_len`
 * (the body may be any memory that lives until wk_handle returns). */
void wk_handle(const wk_request *req, wk_response *resp, const char **body, uint32_t *body_len);

WK_EXPORT("handle") uint64_t handle(const uint8_t *ptr, uint32_t len) {
    static wk_request req;
    wk_response resp = {0};
    const char *body = "";
    uint32_t body_len = 0;
    if (wk_decode_request(ptr, len, &req)) {
        wk_status(&resp, 400);
        wk_add_header(&resp, "content-type", "text/plain");
        body = "malformed request\n";
        body_len = (uint32_t)strlen(body);
    } else {
        wk_handle(&req, &resp, &body, &body_len);
    }
    return wk_finish(&resp, body, body_len);
}
#endif

#endif /* WASMKERNEL_H */
