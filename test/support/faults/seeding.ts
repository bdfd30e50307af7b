/**
 * Token stores for fault tests, at any path: tokens issued by the test identity provider and
 * encrypted with the mail password, as an earlier authorisation would have left them.
 */
import { FileTokenStore } from '../../../src/tokens/stores/file-store.js';
import type { IssuedTokens } from '../../peers/idp.js';
import { PASSWORD, type World } from '../world.js';
import { sealTokens } from '../sealed-tokens.js';

/** Stores fresh (or already expired) tokens for `account` in the store at `path`; returns them. */
export async function seedStore(
  world: World,
  path: string,
  account: string,
  options: { expired?: boolean } = {},
): Promise<IssuedTokens> {
  const issued = await world.idp.issueTokensFor(account);
  const now = Math.floor(Date.now() / 1000);
  const fields = await sealTokens(
    {
      accessToken: issued.accessToken,
      accessTokenExpiry: options.expired ? now - 60 : now + issued.expiresIn,
      refreshToken: issued.refreshToken,
    },
    PASSWORD,
  );
  await new FileTokenStore(path).write(account, fields);
  return issued;
}

/** Whether the identity provider still honours `refreshToken` (using it rotates it, as Microsoft does). */
export async function refreshTokenWorks(world: World, refreshToken: string): Promise<boolean> {
  const response = await fetch(world.idp.urls.token, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      client_id: world.idp.clientId,
    }),
  });
  return response.status === 200;
}
