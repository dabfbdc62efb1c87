/* A compute module with every number type (a fixture of the compute-route
 * tests): arguments are checked against these signatures, non-finite results
 * refused. div(0, 0) is NaN and div(1, 0) is +Inf. */
#include "wasmkernel.h"

WK_EXPORT("add32") int32_t add32(int32_t a, int32_t b) { return a + b; }
WK_EXPORT("add64") int64_t add64(int64_t a, int64_t b) { return a + b; }
WK_EXPORT("div") double div_(double a, double b) { return a / b; }
WK_EXPORT("half") float half(float x) { return x / 2.0f; }
