// A plugin in AssemblyScript, through @assemblyscript/wasi-shim: CGI on
// stdin, stdout and the environment, nothing else. Build: see ../build.

function getenv(name: string): string {
  // get() on a missing key throws: ask first.
  return process.env.has(name) ? process.env.get(name) : "";
}

const length = I32.parseInt(getenv("CONTENT_LENGTH") || "0");
const wanted = length > 0 ? min(length, 1 << 20) : 0;
const body = new ArrayBuffer(wanted);
let got = 0;
while (got < wanted) {
  const n = process.stdin.read(body, got);
  if (n <= 0) break;
  got += n;
}

process.stdout.write(
  "Content-Type: text/plain\n\nHello from AssemblyScript!\n" +
    "method=" + getenv("REQUEST_METHOD") + "\n" +
    "path=" + getenv("PATH_INFO") + "\n" +
    "query=" + getenv("QUERY_STRING") + "\n" +
    "body(" + got.toString() + ")=" + String.UTF8.decode(body.slice(0, got)) + "\n",
);
