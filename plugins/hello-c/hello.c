/* A plugin in C against wasi-libc: CGI on stdin, stdout and the
 * environment, nothing else. Build: clang --target=wasm32-wasi -O2 -s */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    const char *method = getenv("REQUEST_METHOD");
    const char *path = getenv("PATH_INFO");
    const char *query = getenv("QUERY_STRING");
    const char *length = getenv("CONTENT_LENGTH");
    long n = length ? strtol(length, NULL, 10) : 0;
    if (n < 0) n = 0;
    if (n > 1 << 20) n = 1 << 20;
    char *body = malloc((size_t)n + 1);
    size_t got = 0;
    while (body && got < (size_t)n) {
        size_t r = fread(body + got, 1, (size_t)n - got, stdin);
        if (r == 0) break;
        got += r;
    }
    printf("Content-Type: text/plain\n\n");
    printf("Hello from C!\n");
    printf("method=%s\npath=%s\nquery=%s\n", method ? method : "", path ? path : "", query ? query : "");
    printf("body(%zu)=", got);
    if (body) fwrite(body, 1, got, stdout);
    printf("\n");
    free(body);
    return 0;
}
