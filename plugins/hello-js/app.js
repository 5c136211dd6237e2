// A plugin in JavaScript: a wasi:http component made with componentize-js
// (StarlingMonkey), answering the fetch event as a service worker would.
// Build: componentize-js app.js --wit WIT -n app -o hello-js.wasm
// (plugins/build makes the WIT from the wasmtime-wasi-http crate's, at the
// wasi:http version the engine expects).
addEventListener("fetch", (event) => event.respondWith(handle(event.request)));

async function handle(request) {
  const url = new URL(request.url);
  // Under wasmhttpd, where the path below the plugin's route starts.
  const pathInfo = request.headers.get("wasmhttpd-path-info");
  const path = pathInfo === null ? url.pathname : decodeURIComponent(pathInfo);
  const body = await request.text();
  const text =
    `Hello from JavaScript!\nmethod=${request.method}\npath=${path}\n` +
    `query=${url.search.slice(1)}\nbody(${body.length})=${body}\n`;
  return new Response(text, { headers: { "content-type": "text/plain" } });
}
