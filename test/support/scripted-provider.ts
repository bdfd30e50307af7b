import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach } from 'vitest';

/**
 * A small node:http token endpoint that answers every request as a failing (or odd) identity
 * provider would, for unit tests of how the OAuth code reads such answers. It records each
 * request's form. Servers started in a test are closed after it.
 */
export interface ScriptedProvider {
  readonly base: string;
  /** The form of every request, in arrival order. */
  readonly forms: URLSearchParams[];
  close(): Promise<void>;
}

export type Answer = (
  request: IncomingMessage,
  form: URLSearchParams,
  response: ServerResponse,
) => void;

const running: ScriptedProvider[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((provider) => provider.close()));
});

/** Starts a provider on 127.0.0.1 that answers every request with `answer`. */
export async function scriptedProvider(answer: Answer): Promise<ScriptedProvider> {
  const forms: URLSearchParams[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      forms.push(form);
      answer(request, form, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const provider: ScriptedProvider = {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    forms,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  running.push(provider);
  return provider;
}

/** Answers `status` with `body` as JSON. */
export function json(status: number, body: unknown, headers: Record<string, string> = {}): Answer {
  return (_request, _form, response) => {
    response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
    response.end(JSON.stringify(body));
  };
}
