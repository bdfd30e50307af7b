/**
 * The SMTP upstream (test/peers/smtp-upstream.ts) in a process of its own, so that in the SMTP
 * measurement the server's TLS and DATA parsing do not share a core with the benchmark's client.
 *
 * Parent → child: `{ idp: { urls, clients }, certs }` as the first IPC message; then `'take'`,
 * answered with the sizes of the messages accepted since the last `'take'` (which are dropped).
 */
import {
  startSmtpUpstream,
  type SmtpUpstreamOptions,
  type StoredMessage,
} from '../test/peers/smtp-upstream.js';

/** The first message to the child: what `startSmtpUpstream` needs. */
export interface SmtpChildStart {
  readonly idp: SmtpUpstreamOptions['idp'];
  readonly certs: SmtpUpstreamOptions['certs'];
}

/** The child's first answer. */
export interface SmtpChildReady {
  readonly port: number;
}

/** The answer to `'take'`. */
export interface SmtpChildTaken {
  readonly sizes: number[];
}

process.once('message', (start: SmtpChildStart) => {
  void startSmtpUpstream({ idp: start.idp, security: 'starttls', certs: start.certs }).then(
    (upstream) => {
      // The peer keeps every message; a benchmark sends gigabytes, so they are dropped once counted.
      const accepted = upstream.messages as StoredMessage[];
      process.on('message', (request: unknown) => {
        if (request !== 'take') return;
        const sizes = accepted.map((message) => message.raw.length);
        accepted.length = 0;
        process.send?.({ sizes } satisfies SmtpChildTaken);
      });
      process.send?.({ port: upstream.port } satisfies SmtpChildReady);
    },
  );
});
process.on('disconnect', () => process.exit(0));
