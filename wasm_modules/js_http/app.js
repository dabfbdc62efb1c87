// A wasi:http component in JavaScript (componentize-js): a greeting, an echo
// of the request body, the request's headers, and an outgoing request to an
// allow-listed origin (`/fetch?url=...`).
addEventListener("fetch", (event) => event.respondWith(handle(event.request)));

async function handle(request) {
  const url = new URL(request.url);
  const text = { "content-type": "text/plain; charset=utf-8" };
  if (url.pathname.endsWith("/echo")) {
    const body = await request.arrayBuffer();
    return new Response(body, { headers: { "content-type": "application/octet-stream" } });
  }
  if (url.pathname.endsWith("/headers")) {
    let lines = "";
    for (const [name, value] of request.headers) lines += `${name}: ${value}\n`;
    return new Response(lines, { headers: text });
  }
  if (url.pathname.endsWith("/fetch")) {
    try {
      const upstream = await fetch(url.searchParams.get("url"));
      return new Response(`upstream said ${upstream.status}: ${await upstream.text()}`, { headers: text });
    } catch (error) {
      return new Response(`outgoing request failed: ${error}\n`, { status: 502, headers: text });
    }
  }
  const name = url.searchParams.get("name") || "world";
  return new Response(`Hello, ${name}, from JavaScript!\n`, { headers: text });
}
