import React, { useEffect, useState } from 'react';
import { Alert, Button, LoadingSpinner, Text, hubspot } from '@hubspot/ui-extensions';
import { RELAY_URL } from './relay-url.js';
import { callRelay } from './relay.js';

// A card on the contact record that asks the company's protected API about this contact through
// the stack's relay (hubspot.fetch, signed by HubSpot) and shows what it answered.
// https://developers.hubspot.com/docs/apps/developer-platform/add-features/ui-extensibility/app-cards/reference

hubspot.extend(({ context }) => <RelayCard context={context} />);

export const RelayCard = ({ context }) => {
  const [result, setResult] = useState({ state: 'loading' });
  const load = () => {
    setResult({ state: 'loading' });
    callRelay(hubspot.fetch, RELAY_URL, context.crm.objectId).then(setResult);
  };
  useEffect(load, [context.crm.objectId]);

  if (result.state === 'loading') {
    return <LoadingSpinner label="Asking the protected API" />;
  }
  if (result.state === 'error') {
    return (
      <>
        <Alert title="The protected API could not answer" variant="error">
          {result.message}
        </Alert>
        <Button onClick={load}>Try again</Button>
      </>
    );
  }
  return (
    <>
      <Text format={{ fontWeight: 'bold' }}>The protected API answered {result.status}</Text>
      <Text>{result.body}</Text>
    </>
  );
};
