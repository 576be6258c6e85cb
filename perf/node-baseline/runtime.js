'use strict';
// A minimal Lambda Runtime API client (what AWS's Node.js runtime does around a handler):
// GET /next, run the handler, POST the result to /response (or /error), forever.
// It is deliberately lean, so the baseline is not penalised for AWS's runtime bootstrap.

const http = require('node:http');

const API = process.env.AWS_LAMBDA_RUNTIME_API;
const BASE = '/2018-06-01/runtime';
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const [HOST, PORT] = API ? API.split(':') : ['', ''];

function call(method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(body);
    const req = http.request(
      {
        host: HOST,
        port: Number(PORT),
        method,
        path: BASE + path,
        agent,
        headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {},
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

async function run(handler) {
  if (!API) throw new Error('AWS_LAMBDA_RUNTIME_API is not set');
  for (;;) {
    const next = await call('GET', '/invocation/next');
    const id = next.headers['lambda-runtime-aws-request-id'];
    let result;
    try {
      result = await handler(JSON.parse(next.body), { awsRequestId: id });
    } catch (err) {
      await call(
        'POST',
        `/invocation/${id}/error`,
        JSON.stringify({ errorType: err.name || 'Error', errorMessage: String(err.message) }),
      );
      continue;
    }
    await call('POST', `/invocation/${id}/response`, JSON.stringify(result));
  }
}

module.exports = { run };
