import { readFile } from 'node:fs/promises';
import { accessSecretFile, webUrlFile } from '../web/access-secret.js';
import { KEY_PARAMETER } from '../web/routes.js';

/**
 * `oauth2-mail-proxy web-url`: the page's address with its access key, as the running daemon left
 * it beside the token store. Only the daemon's user can read either file.
 */
export async function webUrl(options: { cacheStore: string }): Promise<number> {
  let address: string;
  let secret: string;
  try {
    address = (await readFile(webUrlFile(options.cacheStore), 'utf8')).trim();
    secret = (await readFile(accessSecretFile(options.cacheStore), 'utf8')).trim();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    process.stderr.write(
      code === 'ENOENT'
        ? 'No authorisation page is running: start the proxy with --web-address (and the same --cache-store).\n'
        : `Cannot read the page's address: ${code ?? (err as Error).message} (run this as the user the proxy runs as).\n`,
    );
    return 1;
  }
  process.stdout.write(`${address}?${KEY_PARAMETER}=${secret}\n`);
  return 0;
}
