// A Spin HTTP component in JavaScript (Spin JS SDK build tools, ComponentizeJS /
// StarlingMonkey), exporting wasi:http/incoming-handler. Routes:
//   GET  /hello          -> "Hello from JavaScript\n"
//   GET  /request        -> the request as JSON (method, url, headers)
//   GET  /kv/<key>       -> the value in the `default` store, 404 when missing
//   PUT  /kv/<key>       -> stores the body;  DELETE /kv/<key> removes it
//   GET  /kv-denied      -> opens the ungranted store `secret`: 403, error text
//   POST /echo           -> the body, unchanged
//   GET  /var/<name>     -> a component variable, 500 with the error when undefined
import { Store } from 'fermyon:spin/key-value@2.0.0';
import { get as getVariable } from 'fermyon:spin/variables@2.0.0';

const text = (status, body) =>
    new Response(body, { status, headers: { 'content-type': 'text/plain' } });

// A WIT `result` error arrives as a thrown ComponentError whose `payload` is
// the variant, e.g. { tag: 'access-denied' } or { tag: 'undefined', val: 'x' }.
const describe = (e) => {
    const p = e?.payload;
    if (p && typeof p === 'object' && 'tag' in p) {
        return p.val === undefined ? p.tag : `${p.tag}: ${p.val}`;
    }
    return String(e);
};

async function handle(request) {
    const url = new URL(request.url);
    const path = url.pathname;
    if (path === '/hello') {
        return text(200, 'Hello from JavaScript\n');
    }
    if (path === '/request') {
        const headers = {};
        for (const [name, value] of request.headers) headers[name] = value;
        const body = JSON.stringify({
            method: request.method,
            url: request.url,
            path,
            query: url.search.replace(/^\?/, ''),
            headers,
        });
        return new Response(body + '\n', { headers: { 'content-type': 'application/json' } });
    }
    if (path === '/echo') {
        const body = await request.arrayBuffer();
        const type = request.headers.get('content-type') ?? 'application/octet-stream';
        return new Response(body, { headers: { 'content-type': type } });
    }
    if (path === '/kv-denied') {
        try {
            Store.open('secret');
            return text(200, 'opened store secret (should have been denied)\n');
        } catch (e) {
            return text(403, describe(e) + '\n');
        }
    }
    if (path.startsWith('/kv/')) {
        const key = path.slice('/kv/'.length);
        try {
            const store = Store.open('default');
            switch (request.method) {
                case 'GET': {
                    const value = store.get(key);
                    return value === undefined
                        ? text(404, `no key ${key}\n`)
                        : new Response(value, { headers: { 'content-type': 'application/octet-stream' } });
                }
                case 'PUT':
                case 'POST': {
                    const value = new Uint8Array(await request.arrayBuffer());
                    store.set(key, value);
                    return text(200, `stored ${key} (${value.length} bytes)\n`);
                }
                case 'DELETE':
                    if (!store.exists(key)) return text(404, `no key ${key}\n`);
                    store.delete(key);
                    return text(200, `deleted ${key}\n`);
                default:
                    return text(405, 'GET, PUT or DELETE\n');
            }
        } catch (e) {
            return text(500, describe(e) + '\n');
        }
    }
    if (path.startsWith('/var/')) {
        try {
            return text(200, getVariable(path.slice('/var/'.length)));
        } catch (e) {
            return text(500, describe(e) + '\n');
        }
    }
    return text(404, `no route for ${path}\n`);
}

addEventListener('fetch', (event) => {
    event.respondWith(handle(event.request));
});
