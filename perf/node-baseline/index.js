'use strict';
// The usual alternative to hsbridge's webhook intake, written the way a Node.js team would:
// `Signature.isValid` from HubSpot's official @hubspot/api-client, the AWS SDK for JavaScript v3,
// and the same work per request as the Rust intake (same order, same calls):
//   size bound -> v3 signature over the public URL and the raw body -> parse ->
//   account status (DynamoDB GetItem per portal) -> in-batch dedupe ->
//   conditional PutItem claim per event (16 at a time) -> SQS SendMessageBatch (10 per call) ->
//   UpdateItem completing each claim (16 at a time) -> 200 with the same JSON answer.
//
// BASELINE_ADAPTERS=aws (default) uses DynamoDB, SQS and Secrets Manager (moto in the harness);
// BASELINE_ADAPTERS=memory uses in-process maps, like hsbridge's embedded adapters.
// Only for the performance harness: not a product, no retries, no release of claims on failure.

const { Signature } = require('@hubspot/api-client');
const { DynamoDBClient, GetItemCommand, PutItemCommand, UpdateItemCommand } = require('@aws-sdk/client-dynamodb');
const { SQSClient, SendMessageBatchCommand } = require('@aws-sdk/client-sqs');
const { SecretsManagerClient, GetSecretValueCommand } = require('@aws-sdk/client-secrets-manager');
const { run } = require('./runtime');

const env = process.env;
const MEMORY = env.BASELINE_ADAPTERS === 'memory';
const MAX_BODY = Number(env.HSBRIDGE_MAX_BODY_BYTES || 1048576);
const MAX_EVENTS = Number(env.HSBRIDGE_MAX_EVENTS || 100);
const HORIZON_MS = 72 * 3600 * 1000;
const IN_PROGRESS_MS = 10 * 1000;
const CONCURRENCY = 16;

// Clients are built once per cold start, as AWS recommends.
const ddb = MEMORY ? null : new DynamoDBClient({});
const sqs = MEMORY ? null : new SQSClient({});
const sm = MEMORY ? null : new SecretsManagerClient({});

const memory = {
  records: new Map(),
  queued: 0,
  active: new Set(String(env.BASELINE_ACTIVE_PORTALS || '').split(',').filter(Boolean)),
};

let cachedSecret = null;
async function clientSecret() {
  if (MEMORY) return env.HUBSPOT_CLIENT_SECRET;
  const now = Date.now();
  if (cachedSecret && now - cachedSecret.at < 60000) return cachedSecret.value;
  const out = await sm.send(
    new GetSecretValueCommand({ SecretId: env.HSBRIDGE_HUBSPOT_SECRET_ID, VersionStage: 'AWSCURRENT' }),
  );
  const value = JSON.parse(out.SecretString).client_secret;
  cachedSecret = { at: now, value };
  return value;
}

function json(statusCode, body) {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

async function pool(items, fn) {
  const results = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(CONCURRENCY, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  });
  await Promise.all(workers);
  return results;
}

async function accountActive(portalId) {
  if (MEMORY) return memory.active.has(String(portalId));
  const out = await ddb.send(
    new GetItemCommand({
      TableName: env.HSBRIDGE_ACCOUNTS_TABLE,
      Key: { hub_id: { S: String(portalId) } },
      ProjectionExpression: '#s',
      ExpressionAttributeNames: { '#s': 'status' },
    }),
  );
  return out.Item?.status?.S === 'active';
}

async function claim(key, owner, now) {
  const expires = now + IN_PROGRESS_MS;
  if (MEMORY) {
    const r = memory.records.get(key);
    if (r && r.expires >= now) return r.status === 'COMPLETED' ? 'completed' : 'in_progress';
    memory.records.set(key, { status: 'IN_PROGRESS', owner, expires });
    return 'claimed';
  }
  try {
    await ddb.send(
      new PutItemCommand({
        TableName: env.HSBRIDGE_DEDUPE_TABLE,
        Item: {
          pk: { S: key },
          status: { S: 'IN_PROGRESS' },
          owner: { S: owner },
          expires_at_ms: { N: String(expires) },
          ttl: { N: String(Math.floor(expires / 1000) + 86400) },
        },
        ConditionExpression: 'attribute_not_exists(pk) OR expires_at_ms < :now',
        ExpressionAttributeValues: { ':now': { N: String(now) } },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
    return 'claimed';
  } catch (err) {
    if (err.name === 'ConditionalCheckFailedException') {
      return err.Item?.status?.S === 'COMPLETED' ? 'completed' : 'in_progress';
    }
    throw err;
  }
}

async function complete(key, owner, now) {
  const expires = now + HORIZON_MS;
  if (MEMORY) {
    memory.records.set(key, { status: 'COMPLETED', owner, expires });
    return;
  }
  await ddb.send(
    new UpdateItemCommand({
      TableName: env.HSBRIDGE_DEDUPE_TABLE,
      Key: { pk: { S: key } },
      UpdateExpression: 'SET #s = :done, expires_at_ms = :exp, #ttl = :ttl',
      ConditionExpression: '#o = :owner',
      ExpressionAttributeNames: { '#s': 'status', '#o': 'owner', '#ttl': 'ttl' },
      ExpressionAttributeValues: {
        ':done': { S: 'COMPLETED' },
        ':exp': { N: String(expires) },
        ':ttl': { N: String(Math.floor(expires / 1000) + 86400) },
        ':owner': { S: owner },
      },
    }),
  );
}

async function enqueue(messages) {
  if (MEMORY) {
    memory.queued += messages.length;
    return;
  }
  for (let i = 0; i < messages.length; i += 10) {
    const chunk = messages.slice(i, i + 10);
    const out = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: env.HSBRIDGE_EVENTS_QUEUE_URL,
        Entries: chunk.map((m, j) => ({
          Id: String(j),
          MessageBody: m.body,
          MessageAttributes: { portalId: { DataType: 'Number', StringValue: String(m.portalId) } },
        })),
      }),
    );
    if (out.Failed && out.Failed.length) throw new Error('queue refused messages');
  }
}

function header(headers, name) {
  return headers ? headers[name] : undefined;
}

let counter = 0;

async function handler(event, context) {
  const headers = event.headers || {};
  const raw = event.body || '';
  const body = event.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
  if (Buffer.byteLength(body) > MAX_BODY) return json(413, { error: 'payload_too_large' });

  // Verify before anything looks at the content.
  const url = `${header(headers, 'x-forwarded-proto') || 'https'}://${header(headers, 'host')}${event.rawPath}${
    event.rawQueryString ? `?${event.rawQueryString}` : ''
  }`;
  const signature = header(headers, 'x-hubspot-signature-v3');
  const timestamp = Number(header(headers, 'x-hubspot-request-timestamp'));
  let valid = false;
  try {
    valid =
      signature !== undefined &&
      Signature.isValid({
        signatureVersion: 'v3',
        method: event.requestContext?.http?.method || 'POST',
        url,
        requestBody: body,
        timestamp,
        signature,
        clientSecret: await clientSecret(),
      });
  } catch (_) {
    valid = false; // isValid throws on a stale timestamp
  }
  if (!valid) return json(401, { error: 'unauthorized' });

  let batch;
  try {
    batch = JSON.parse(body);
  } catch (_) {
    return json(400, { error: 'bad_request', reason: 'body is not JSON' });
  }
  if (!Array.isArray(batch) || batch.length === 0 || batch.length > MAX_EVENTS) {
    return json(400, { error: 'bad_request', reason: 'not a batch of 1 to 100 events' });
  }
  for (const e of batch) {
    const ok = ['eventId', 'subscriptionId', 'portalId', 'occurredAt'].every(
      (f) => Number.isSafeInteger(e?.[f]) && e[f] >= 0,
    );
    if (!ok || !(e.subscriptionType || e.eventType)) {
      return json(400, { error: 'bad_request', reason: 'malformed event' });
    }
  }

  const portals = [...new Set(batch.map((e) => e.portalId))];
  const active = new Set();
  await Promise.all(
    portals.map(async (p) => {
      if (await accountActive(p)) active.add(p);
    }),
  );
  const ack = { accepted: 0, duplicates: 0, ignored: 0 };
  const seen = new Set();
  const pending = [];
  for (const e of batch) {
    if (!active.has(e.portalId)) {
      ack.ignored += 1;
      continue;
    }
    const key = `${e.portalId}#${e.subscriptionId}#${e.eventId}#${e.occurredAt}`;
    if (seen.has(key)) {
      ack.duplicates += 1;
      continue;
    }
    seen.add(key);
    pending.push({ key, e });
  }

  const owner = `${context.awsRequestId}:${Date.now()}:${process.pid}:${counter++}`;
  const now = Date.now();
  const claims = await pool(pending, (p) => claim(p.key, owner, now));
  const claimed = pending.filter((_, i) => claims[i] === 'claimed');
  ack.duplicates += claims.filter((c) => c !== 'claimed').length;
  if (claimed.length) {
    const receivedAtMs = Date.now();
    await enqueue(
      claimed.map(({ key, e }) => ({
        portalId: e.portalId,
        body: JSON.stringify({
          schema: 'hsbridge.webhook-event.v1',
          dedupeKey: key,
          portalId: e.portalId,
          subscriptionType: e.subscriptionType || e.eventType,
          receivedAtMs,
          signatureVersion: 'v3',
          event: e,
        }),
      })),
    );
    const done = Date.now();
    await pool(claimed, (p) => complete(p.key, owner, done));
    ack.accepted = claimed.length;
  }
  console.log(JSON.stringify({ level: 'INFO', message: 'webhook accepted', events: batch.length, ...ack }));
  return json(200, ack);
}

module.exports = { handler };

if (require.main === module) {
  run(handler).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
