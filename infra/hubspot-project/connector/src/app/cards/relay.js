// The card's one call: GET RELAY_URL + contacts/<record id> through hubspot.fetch, which appends
// the caller's context to the query and signs the final URL with HubSpot's v3 signature (the
// relay verifies it; custom headers are not sent). The answer becomes one of three view states.
// https://developers.hubspot.com/docs/apps/developer-platform/add-features/ui-extensibility/fetching-data

export const TIMEOUT_MS = 12000; // below the relay's own limit and HubSpot's 15 s default

export function relayUrlFor(relayUrl, objectId) {
  const id = String(objectId ?? '');
  if (!/^[0-9]+$/.test(id)) {
    throw new Error(`the record id ${JSON.stringify(id)} is not a number`);
  }
  return `${relayUrl}contacts/${id}`;
}

export async function callRelay(fetch, relayUrl, objectId) {
  let url;
  try {
    url = relayUrlFor(relayUrl, objectId);
  } catch (e) {
    return { state: 'error', message: e.message };
  }
  let response;
  try {
    response = await fetch(url, { method: 'GET', timeout: TIMEOUT_MS });
  } catch (e) {
    return { state: 'error', message: `the relay could not be reached (${e.message})` };
  }
  const text = await response.text();
  if (!response.ok) {
    return { state: 'error', message: `the relay answered ${response.status}`, body: text.slice(0, 500) };
  }
  let body;
  try {
    body = JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    body = text;
  }
  return { state: 'loaded', status: response.status, body };
}
