/**
 * A real SMTP submission server as the proxy's upstream, shaped like Office 365's
 * `smtp.office365.com`: `AUTH XOAUTH2` only, on STARTTLS (port 587 style) or implicit TLS (465
 * style), with bearer tokens checked at the test identity provider's introspection endpoint. It
 * keeps every accepted message as the bytes smtp-server decoded (dot-stuffing undone).
 */
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import type {
  SMTPServerAuthentication,
  SMTPServerAuthenticationResponse,
  SMTPServerSession,
} from 'smtp-server';
import type { TestCa } from './certs.js';
import type { Idp } from './idp.js';

/** Office 365's scope for authenticated SMTP, as its XOAUTH2 error challenge names it. */
export const SMTP_SEND_SCOPE = 'https://outlook.office.com/SMTP.Send';

/** Office 365's reply when SMTP AUTH is turned off for the mailbox or tenant, verbatim. */
export const SMTP_AUTH_DISABLED_REPLY =
  '5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.';

/** The SIZE Office 365 advertises. */
export const OFFICE365_MAX_MESSAGE_BYTES = 157_286_400;

export interface SmtpUpstreamOptions {
  /** Whose introspection endpoint checks the tokens. */
  readonly idp: Pick<Idp, 'urls' | 'clients'>;
  /** `starttls`: plain, upgraded by STARTTLS (587); `implicit`: TLS from the first byte (465). */
  readonly security: 'starttls' | 'implicit';
  readonly certs: TestCa;
  /**
   * A `starttls` server that answers STARTTLS with `500` and never offers it, as a misconfigured
   * or downgraded server would. The proxy must not log in over plain text.
   */
  readonly refuseStartTls?: boolean;
}

/** A message the server accepted. */
export interface StoredMessage {
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
  /** The message as smtp-server decoded it from DATA (dot-stuffing removed, final CRLF kept). */
  readonly raw: Buffer;
  /** Who had logged in with XOAUTH2, or undefined for an unauthenticated transaction. */
  readonly user: string | undefined;
  /** The name the client gave in its EHLO/HELO (the proxy replays the client's own). */
  readonly heloName: string;
  /** Whether the connection was on TLS when the message came. */
  readonly secure: boolean;
}

/** One `AUTH XOAUTH2` the server saw. */
export interface XoauthAttempt {
  /** The `user=` of the XOAUTH2 response. */
  readonly user: string;
  readonly outcome: 'accepted' | 'rejected' | 'temporary' | 'smtp-auth-disabled';
}

/** How the next `AUTH XOAUTH2` fails, whatever the token. */
export type ForcedAuthFailure =
  /** `454 4.7.0 ...` at once, as a server whose directory is unavailable. */
  | 'temporary'
  /** `535 5.7.139 ... SmtpClientAuthentication is disabled for the Tenant.` at once. */
  | 'smtp-auth-disabled';

export interface SmtpUpstream {
  readonly port: number;
  readonly security: 'starttls' | 'implicit';
  readonly messages: readonly StoredMessage[];
  readonly attempts: readonly XoauthAttempt[];
  /** Makes the next XOAUTH2 login fail as `kind` (one login only). */
  failNextAuth(kind: ForcedAuthFailure): void;
  stop(): Promise<void>;
}

/** What the identity provider says about a token (RFC 7662). */
interface Introspection {
  readonly active?: boolean;
  readonly sub?: string;
  readonly scope?: string;
}

/** Starts the server on 127.0.0.1 and a free port. */
export async function startSmtpUpstream(options: SmtpUpstreamOptions): Promise<SmtpUpstream> {
  const [key, cert] = await Promise.all([
    readFile(options.certs.keyFile),
    readFile(options.certs.certFile),
  ]);
  const messages: StoredMessage[] = [];
  const attempts: XoauthAttempt[] = [];
  let forcedFailure: ForcedAuthFailure | undefined;

  const introspect = async (token: string): Promise<Introspection> => {
    const { clientId, clientSecret } = options.idp.clients.introspection;
    const response = await fetch(options.idp.urls.introspect, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token }),
    });
    if (!response.ok) throw new Error(`introspection answered ${response.status}`);
    return (await response.json()) as Introspection;
  };

  const server: SMTPServer = new SMTPServer({
    name: 'smtp.office365.test',
    secure: options.security === 'implicit',
    key,
    cert,
    authMethods: ['XOAUTH2'],
    // Office 365's extensions: enhanced status codes, DSN and its 150 MB SIZE (smtp-server hides the first two by default).
    hideENHANCEDSTATUSCODES: false,
    hideDSN: false,
    size: OFFICE365_MAX_MESSAGE_BYTES,
    // Office 365 refuses mail from clients that did not log in; smtp-server's default does the same (530).
    authOptional: false,
    ...(options.refuseStartTls ? { disabledCommands: ['STARTTLS'] } : {}),
    logger: false,
    closeTimeout: 500,
    onAuth(auth: SMTPServerAuthentication, _session: SMTPServerSession, callback): void {
      const user = auth.username ?? '';
      const forced = forcedFailure;
      forcedFailure = undefined;
      if (forced === 'temporary') {
        attempts.push({ user, outcome: 'temporary' });
        callback(
          Object.assign(new Error('Temporary authentication failure, try again later'), {
            responseCode: 454,
          }),
        );
        return;
      }
      if (forced === 'smtp-auth-disabled') {
        attempts.push({ user, outcome: 'smtp-auth-disabled' });
        // The text carries its own enhanced code, as Office 365 sends it; smtp-server would prefix 5.7.8.
        server.options.hideENHANCEDSTATUSCODES = true;
        try {
          callback(Object.assign(new Error(SMTP_AUTH_DISABLED_REPLY), { responseCode: 535 }));
        } finally {
          server.options.hideENHANCEDSTATUSCODES = false;
        }
        return;
      }
      introspect(auth.accessToken ?? '').then(
        (facts) => {
          // The token must be live, carry SMTP.Send, and belong to the user logging in.
          const valid =
            facts.active === true &&
            facts.sub === user &&
            (facts.scope ?? '').split(' ').includes(SMTP_SEND_SCOPE);
          attempts.push({ user, outcome: valid ? 'accepted' : 'rejected' });
          const response: SMTPServerAuthenticationResponse = valid
            ? { user }
            : { data: { status: '401', schemes: 'bearer', scope: SMTP_SEND_SCOPE } };
          callback(null, response);
        },
        (err: unknown) => {
          attempts.push({ user, outcome: 'temporary' });
          callback(
            Object.assign(new Error(`Cannot check the token: ${(err as Error).message}`), {
              responseCode: 454,
            }),
          );
        },
      );
    },
    onData(stream, session, callback): void {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const { mailFrom, rcptTo } = session.envelope;
        messages.push({
          mailFrom: mailFrom ? mailFrom.address : '',
          rcptTo: rcptTo.map((address) => address.address),
          raw: Buffer.concat(chunks),
          user: session.user,
          heloName: session.hostNameAppearsAs,
          secure: session.secure,
        });
        callback();
      });
    },
  });
  server.on('error', () => undefined);

  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.server.address() as AddressInfo;

  return {
    port,
    security: options.security,
    messages,
    attempts,
    failNextAuth(kind: ForcedAuthFailure): void {
      forcedFailure = kind;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
