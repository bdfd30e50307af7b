import type { Idp } from './idp.js';

/**
 * What the identity provider says about a token (RFC 7662), asked the way Dovecot and the SMTP
 * server ask it: whether it is live, and whose it is.
 */
export async function introspect(
  idp: Pick<Idp, 'urls' | 'clients'>,
  token: string,
): Promise<{ active: boolean; sub?: string; [claim: string]: unknown }> {
  const { clientId, clientSecret } = idp.clients.introspection;
  const response = await fetch(idp.urls.introspect, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ token }),
  });
  return (await response.json()) as { active: boolean; sub?: string };
}
