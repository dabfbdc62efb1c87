/* A plain WASI command in C served WAGI-style: CGI headers, then the request
 * body upper-cased, the arguments the registry gave it and the route it matched. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    const char *route = getenv("X_MATCHED_ROUTE");
    printf("Content-Type: text/plain; charset=utf-8\n\n");
    printf("route=%s\n", route ? route : "");
    for (int i = 1; i < argc; i++) printf("arg%d=%s\n", i, argv[i]);
    printf("body=");
    int c;
    while ((c = getchar()) != EOF) putchar(toupper(c));
    printf("\n");
    return 0;
}
