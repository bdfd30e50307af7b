/** What a benchmark client logs in with, on each route. */
export interface Credentials {
  readonly user: string;
  /** The local password the proxy knows the account by. */
  readonly password: string;
  /** The upstream access token a direct client sends with XOAUTH2. */
  readonly accessToken: string;
}

/** SASL XOAUTH2's initial response, base64. */
export function xoauth2(user: string, accessToken: string): string {
  return Buffer.from(`user=${user}\x01auth=Bearer ${accessToken}\x01\x01`).toString('base64');
}

/** SASL PLAIN's response, base64. */
export function plain(user: string, password: string): string {
  return Buffer.from(`\0${user}\0${password}`).toString('base64');
}

/** Fails with the server's words when a reply is not the one expected. */
export function expectReply(line: string, expected: RegExp, step: string): void {
  if (!expected.test(line))
    throw new Error(`${step}: unexpected reply ${JSON.stringify(line.slice(0, 200))}`);
}
