/* The hello CGI program the benchmarks run everywhere: natively under
 * lighttpd mod_cgi (and wasmhttpd --cgi), and compiled to wasm32-wasi as a
 * plugin. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    const char *query = getenv("QUERY_STRING");
    printf("Content-Type: text/plain\n\nHello from CGI! query=%s\n", query ? query : "");
    return 0;
}
