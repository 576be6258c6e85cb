'use strict';
// Throughput of @hubspot/api-client's Signature.isValid (v3) on the request that
// shared/verify/benches/verify.rs uses: POST, the same 82-byte URI, a 1 KiB body, one secret.
// Also the bare floor in Node: one crypto.createHmac over the already-concatenated message.
// Prints one JSON line: nanoseconds per call (median of 5 timed rounds after a warm-up).

const crypto = require('node:crypto');
const { Signature } = require('@hubspot/api-client');

const SECRET = 'yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy';
const METHOD = 'POST';
const URI = 'https://hooks.example.com/hubspot/webhook?portal=62515&email=a%40b.com&q=x%20y%2Bz';
const len = Number(process.argv[2] || 1024);
const pattern = '{"eventId":123,"x":"abc"},';
const body = Array.from({ length: len }, (_, i) => pattern[i % pattern.length]).join('');
const timestamp = Date.now();
const signature = crypto
  .createHmac('sha256', SECRET)
  .update(METHOD + URI + body + timestamp)
  .digest('base64');
const options = { signatureVersion: 'v3', method: METHOD, url: URI, requestBody: body, timestamp, signature, clientSecret: SECRET };
if (!Signature.isValid(options)) throw new Error('the sample does not verify');
const message = METHOD + URI + body + timestamp;

function time(fn, iterations) {
  const start = process.hrtime.bigint();
  let ok = 0;
  for (let i = 0; i < iterations; i++) if (fn()) ok++;
  const ns = Number(process.hrtime.bigint() - start);
  if (ok !== iterations) throw new Error('a call failed');
  return ns / iterations;
}

function median(fn) {
  time(fn, 20000); // warm-up (JIT)
  const rounds = [];
  for (let r = 0; r < 5; r++) rounds.push(time(fn, 50000));
  rounds.sort((a, b) => a - b);
  return rounds[2];
}

const isValidNs = median(() => Signature.isValid(options));
const floorNs = median(() => crypto.createHmac('sha256', SECRET).update(message).digest('base64').length > 0);
console.log(JSON.stringify({ node: process.version, bodyBytes: len, isValidNs, hmacFloorNs: floorNs }));
