#!/bin/sh
# A classic CGI script: shows the request as a script sees it (RFC 3875
# meta-variables), and the body of a POST.
printf 'Content-Type: text/plain; charset=utf-8\n'
printf 'X-Content-Type-Options: nosniff\n\n'
echo "Hello from a CGI script, running as $(id -un) in $(pwd)."
echo
echo "Its environment (the request's meta-variables, PATH and nothing else of the server's):"
env | sort
if [ -n "$CONTENT_LENGTH" ]; then
    echo
    echo "Its standard input ($CONTENT_LENGTH bytes):"
    cat
fi
