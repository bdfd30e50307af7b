import { decodeBase64, decodePlain, type PlainCredentials } from '../sasl.js';

/** What the client's `AUTH` exchange produced. */
export type AuthExchange =
  | { readonly kind: 'credentials'; readonly credentials: PlainCredentials }
  /** The client answered a `334` with `*` (RFC 4954 section 4). */
  | { readonly kind: 'cancelled' }
  | { readonly kind: 'malformed'; readonly message: string }
  | { readonly kind: 'unsupported-mechanism' }
  /** The client went away in the middle of the exchange. */
  | { readonly kind: 'closed' };

/** The two things an exchange needs from the session: ask with a `334`, read the answer line. */
export interface AuthDialogue {
  /** Sends `334 <base64 challenge>`. */
  challenge(base64: string): void;
  /** The client's next line, or null when it has gone. */
  readResponse(): Promise<string | null>;
}

type Mechanism = (
  initialResponse: string | undefined,
  dialogue: AuthDialogue,
) => Promise<AuthExchange>;

const USERNAME_PROMPT = Buffer.from('Username:').toString('base64');
const PASSWORD_PROMPT = Buffer.from('Password:').toString('base64');

/** RFC 4616 PLAIN: one response, inline (`=` for empty) or after an empty `334`. */
const plain: Mechanism = async (initialResponse, dialogue) => {
  const response = initialResponse ?? (await ask(dialogue, ''));
  if (typeof response !== 'string') return response;
  const credentials = decodePlain(response === '=' ? '' : response);
  if (!credentials)
    return {
      kind: 'malformed',
      message: 'Malformed AUTH PLAIN response (expected base64 of NUL user NUL password)',
    };
  return { kind: 'credentials', credentials };
};

/** The LOGIN mechanism (draft-murchison-sasl-login): user name, inline or prompted, then password. */
const login: Mechanism = async (initialResponse, dialogue) => {
  const encodedUser = initialResponse ?? (await ask(dialogue, USERNAME_PROMPT));
  if (typeof encodedUser !== 'string') return encodedUser;
  const username = decodeText(encodedUser);
  if (username === undefined)
    return { kind: 'malformed', message: 'Malformed AUTH LOGIN user name (expected base64)' };

  const encodedPassword = await ask(dialogue, PASSWORD_PROMPT);
  if (typeof encodedPassword !== 'string') return encodedPassword;
  const password = decodeText(encodedPassword);
  if (password === undefined)
    return { kind: 'malformed', message: 'Malformed AUTH LOGIN password (expected base64)' };
  return { kind: 'credentials', credentials: { username, password } };
};

/** The mechanisms a password client may use with us; the upstream only ever sees XOAUTH2. */
const MECHANISMS: Readonly<Record<string, Mechanism>> = { PLAIN: plain, LOGIN: login };

/** The mechanisms we advertise, in EHLO order. */
export const CLIENT_MECHANISMS = Object.keys(MECHANISMS);

/**
 * Runs the client's side of `AUTH <mechanism> [initial-response]` up to the credentials. Never
 * talks to the upstream: what comes out is a local user name and password.
 */
export function readClientCredentials(
  mechanism: string,
  initialResponse: string | undefined,
  dialogue: AuthDialogue,
): Promise<AuthExchange> {
  const run = MECHANISMS[mechanism.toUpperCase()];
  if (!run) return Promise.resolve({ kind: 'unsupported-mechanism' });
  return run(initialResponse, dialogue);
}

/** One `334` round trip; the answer line, or the exchange's end when the client cancels or leaves. */
async function ask(dialogue: AuthDialogue, challenge: string): Promise<string | AuthExchange> {
  dialogue.challenge(challenge);
  const line = await dialogue.readResponse();
  if (line === null) return { kind: 'closed' };
  const response = line.trim();
  return response === '*' ? { kind: 'cancelled' } : response;
}

function decodeText(base64: string): string | undefined {
  const bytes = decodeBase64(base64);
  if (!bytes || bytes.length === 0) return undefined;
  return bytes.toString('utf8');
}
