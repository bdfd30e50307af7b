import type { Protocol } from '../../../src/config/types.js';
import type { Conversation } from '../../support/conversation.js';
import { ScriptedUpstream, type testCa } from '../../support/session-harness.js';
import { ACCEPTED_TOKEN } from './accounts.js';

/**
 * The upstream of the fuzz listeners: a `ScriptedUpstream` that answers every connection by
 * itself, the way Dovecot or Office 365 would, and records every line the proxy sends it before a
 * login succeeds. It accepts XOAUTH2 with one token (`ACCEPTED_TOKEN`) and refuses any other with
 * the usual error challenge.
 */

/** One connection the proxy opened to the upstream. */
export interface UpstreamRecord {
  /** Every line the proxy sent before the login succeeded (or the client was passed through). */
  readonly lines: string[];
  /** `passed-through`: SMTP only, the client went on without logging in and now talks to us directly. */
  state: 'login-pending' | 'logged-in' | 'passed-through';
}

/** What the server says after its error challenge; base64 of Office 365's JSON. */
const ERROR_CHALLENGE = Buffer.from(
  '{"status":"401","schemes":"bearer","scope":"https://outlook.office.com/.default"}',
).toString('base64');

/** The `user=...^Aauth=Bearer ...^A^A` of an XOAUTH2 initial response, or undefined. */
export function decodeXoauth2(base64: string): { user: string; token: string } | undefined {
  const match = /^user=([^\x01]*)\x01auth=Bearer ([^\x01]*)\x01\x01$/.exec(
    Buffer.from(base64, 'base64').toString('utf8'),
  );
  return match ? { user: match[1] ?? '', token: match[2] ?? '' } : undefined;
}

function acceptable(base64: string): boolean {
  return decodeXoauth2(base64)?.token === ACCEPTED_TOKEN;
}

type Responder = (c: Conversation, record: UpstreamRecord) => Promise<void>;

export class FuzzUpstream {
  /** Every connection so far, oldest first. */
  readonly records: UpstreamRecord[] = [];
  private stopped = false;

  private constructor(
    readonly scripted: ScriptedUpstream,
    private readonly respond: Responder,
  ) {}

  static async start(
    ca: Awaited<ReturnType<typeof testCa>>,
    protocol: Protocol,
  ): Promise<FuzzUpstream> {
    const scripted = await ScriptedUpstream.start(ca, 'implicit');
    const upstream = new FuzzUpstream(scripted, RESPONDERS[protocol]);
    void upstream.acceptLoop();
    return upstream;
  }

  /** Open TCP connections from the proxy right now. */
  get openConnections(): number {
    return this.scripted.rawSockets.size;
  }

  /** Cuts off every connection from the proxy still open. */
  dropConnections(): void {
    for (const socket of this.scripted.rawSockets) socket.destroy();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.scripted.close();
  }

  private async acceptLoop(): Promise<void> {
    while (!this.stopped) {
      let conversation: Conversation;
      try {
        // Short waits, so that `stop` is noticed; a timed-out wait is simply renewed.
        conversation = await this.scripted.next(250);
      } catch {
        continue;
      }
      const record: UpstreamRecord = { lines: [], state: 'login-pending' };
      this.records.push(record);
      this.respond(conversation, record).catch(() => undefined);
    }
  }
}

/** Reads and records lines until the proxy closes; `answer` replies to each. */
async function converse(
  c: Conversation,
  record: UpstreamRecord,
  answer: (line: string) => 'continue' | 'done',
): Promise<void> {
  for (;;) {
    const line = await c.line(600_000);
    record.lines.push(line);
    if (answer(line) === 'done') {
      // From here on the bytes are the client's, spliced through; nobody reads them.
      c.socket.removeAllListeners('data');
      c.socket.resume();
      return;
    }
  }
}

/** What a server that only knows XOAUTH2 says, in one protocol's words. */
interface Xoauth2Words {
  readonly greeting: string;
  readonly command: RegExp;
  readonly loggedIn: string;
  readonly refused: string;
  readonly unexpected: string;
}

/**
 * A server that takes XOAUTH2 and nothing else: a token other than `ACCEPTED_TOKEN` gets the error
 * challenge, and the empty (or cancelling `*`) line after it the refusal.
 */
function xoauth2Only(words: Xoauth2Words): Responder {
  return async (c, record) => {
    c.send(words.greeting);
    let challenged = false;
    await converse(c, record, (line) => {
      const xoauth2 = words.command.exec(line)?.[1];
      if (xoauth2 !== undefined && acceptable(xoauth2)) {
        c.send(words.loggedIn);
        record.state = 'logged-in';
        return 'done';
      }
      if (xoauth2 !== undefined) {
        challenged = true;
        c.send(`+ ${ERROR_CHALLENGE}`);
      } else if (challenged && (line === '' || line === '*')) {
        challenged = false;
        c.send(words.refused);
      } else {
        c.send(words.unexpected);
      }
      return 'continue';
    });
  };
}

const imap = xoauth2Only({
  greeting: '* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] fuzz upstream ready',
  command: /^P1 AUTHENTICATE XOAUTH2 (\S+)$/,
  loggedIn: 'P1 OK [CAPABILITY IMAP4rev1 IDLE MOVE] Logged in',
  refused: 'P1 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)',
  unexpected: '* BAD unexpected line',
});

const pop3 = xoauth2Only({
  greeting: '+OK fuzz upstream ready',
  command: /^AUTH XOAUTH2 (\S+)$/,
  loggedIn: '+OK Logged in.',
  refused: '-ERR [AUTH] Invalid credentials',
  unexpected: '-ERR unexpected line',
});

const smtp: Responder = async (c, record) => {
  c.send('220 fuzz.upstream ESMTP ready');
  let challenged = false;
  await converse(c, record, (line) => {
    const verb = /^\s*(\S*)/.exec(line)?.[1]?.toUpperCase() ?? '';
    const xoauth2 = /^AUTH XOAUTH2 (\S+)$/.exec(line)?.[1];
    if (xoauth2 !== undefined && acceptable(xoauth2)) {
      c.send('235 2.7.0 Authentication successful');
      record.state = 'logged-in';
      return 'done';
    }
    if (xoauth2 !== undefined) {
      challenged = true;
      c.send(`334 ${ERROR_CHALLENGE}`);
    } else if (challenged) {
      challenged = false;
      c.send(
        line === '*'
          ? '501 5.7.0 Authentication cancelled'
          : '535 5.7.3 Authentication unsuccessful',
      );
    } else if (verb === 'EHLO') {
      c.send(
        '250-fuzz.upstream Hello\r\n250-SIZE 35882577\r\n250-PIPELINING\r\n250-AUTH LOGIN XOAUTH2\r\n250-STARTTLS\r\n250 SMTPUTF8',
      );
    } else if (verb === 'HELO') {
      c.send('250 fuzz.upstream Hello');
    } else if (verb === 'QUIT') {
      c.send('221 2.0.0 Bye');
      c.socket.end();
    } else if (['MAIL', 'RCPT', 'DATA', 'BDAT'].includes(verb)) {
      c.send('530 5.7.57 Client not authenticated to send mail');
      record.state = 'passed-through';
      return 'done';
    } else {
      c.send('500 5.5.2 unexpected line');
    }
    return 'continue';
  });
};

const RESPONDERS: Record<Protocol, Responder> = { IMAP: imap, POP: pop3, SMTP: smtp };
