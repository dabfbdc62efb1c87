/* wasmkernel.h: the WasmKernel guest ABI for C (clang --target=wasm32-wasi).
 *
 * One header, no library. Include it in exactly one .c file of a module:
 *
 *   - it exports `alloc(size) -> ptr` and `dealloc(ptr, size)` (over malloc/free),
 *     the buffers the host copies requests and arrays into;
 *   - with WASMKERNEL_HTTP defined before the include, it also exports
 *     `handle(req_ptr, req_len) -> i64` which decodes the request and calls
 *         void wk_handle(const wk_request *req, wk_response *resp);
 *     that you write, then returns the encoded response.
 *
 * The HTTP wire format (docs/wasm-abi.md), integers u32 little-endian,
 * field(x) = u32 length + bytes:
 *   request : field(method) field(path) field(query)
 *             u32 n x (field(name) field(value))   route params
 *             u32 n x (field(name) field(value))   headers, names lower-case
 *             field(body)
 *   response: u32 status, u32 n x (field(name) field(value)), field(body)
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
