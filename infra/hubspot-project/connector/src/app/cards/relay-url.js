// Written by `hsbridge hubspot-project` from the stack's RelayUrl output; edit the stack, not
// this file. It must also be listed in app-hsmeta.json's permittedUrls.fetch.
export const RELAY_URL = 'https://hooks.example.com/hubspot/relay/';
