/**
 * The few IMAP steps the fault tests take by hand, on a {@link Conversation}: a raw client can
 * vanish at any byte, which real client programs cannot be made to do.
 */
import { Conversation } from '../conversation.js';

/** Connects (from the loopback address `from`, if given) and reads the proxy's greeting. */
export async function greeted(port: number, from?: string): Promise<Conversation> {
  const client = await Conversation.connect(port, from);
  await client.expect(/^\* OK /);
  return client;
}

/** Reads lines until the tagged reply to `tag` (or a BYE), returning that last line. */
export async function finalReply(
  client: Conversation,
  tag: string,
  timeoutMs = 20_000,
): Promise<string> {
  for (;;) {
    const line = await client.line(timeoutMs);
    if (line.startsWith(`${tag} `) || line.startsWith('* BYE')) return line;
  }
}

/** A whole login on a fresh connection: the reply the client ends up with. */
export async function loginReply(
  port: number,
  user: string,
  password: string,
  timeoutMs?: number,
): Promise<string> {
  const client = await greeted(port);
  try {
    client.send(`a1 LOGIN "${user}" "${password}"`);
    return await finalReply(client, 'a1', timeoutMs);
  } finally {
    client.close();
  }
}

/** A logged-in session with INBOX selected; fails the test otherwise. */
export async function inboxSession(
  port: number,
  user: string,
  password: string,
  from?: string,
): Promise<Conversation> {
  const client = await greeted(port, from);
  client.send(`a1 LOGIN "${user}" "${password}"`);
  const login = await finalReply(client, 'a1');
  if (!login.startsWith('a1 OK')) throw new Error(`login failed: ${login}`);
  client.send('a2 SELECT INBOX');
  const select = await finalReply(client, 'a2');
  if (!select.startsWith('a2 OK')) throw new Error(`SELECT failed: ${select}`);
  return client;
}

/** Fetches a whole message (`BODY.PEEK[]`, so it stays unseen) and returns its bytes. */
export async function fetchMessage(client: Conversation, uid: number, tag = 'f1'): Promise<Buffer> {
  client.send(`${tag} UID FETCH ${uid} BODY.PEEK[]`);
  for (;;) {
    const line = await client.line(20_000);
    const literal = /\{(\d+)\}$/.exec(line);
    if (literal) {
      const body = await client.bytes(Number(literal[1]));
      await finalReply(client, tag);
      return body;
    }
    if (line.startsWith(`${tag} `)) throw new Error(`FETCH ended without a body: ${line}`);
  }
}
