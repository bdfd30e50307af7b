/**
 * Completes the identity provider's login and consent interactions without any UI: the user is
 * whoever the test names (a header from the test browser, else the `login_hint`, else the default
 * user) and every requested scope is granted, as a user clicking "Accept" would.
 */
import type {
  Interaction,
  InteractionResults,
  Middleware,
  default as Provider,
} from 'oidc-provider';

/** Request header the test browser uses to say which user signs in (overrides `login_hint`). */
export const LOGIN_AS_HEADER = 'x-test-login-as';

async function grantEverythingRequested(
  provider: Provider,
  interaction: Interaction,
): Promise<string> {
  const accountId = interaction.session?.accountId;
  const clientId = interaction.params.client_id;
  if (accountId === undefined || typeof clientId !== 'string') {
    throw new Error('consent interaction without a signed-in user or client');
  }
  const existing =
    interaction.grantId === undefined ? undefined : await provider.Grant.find(interaction.grantId);
  const grant = existing ?? new provider.Grant({ accountId, clientId });
  const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = interaction.prompt.details;
  if (missingOIDCScope !== undefined) grant.addOIDCScope(missingOIDCScope.join(' '));
  if (missingOIDCClaims !== undefined) grant.addOIDCClaims(missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return grant.save();
}

/** Koa middleware answering `GET <pathPrefix><uid>` by finishing the interaction at once. */
export function autoCompleteInteractions(
  provider: Provider,
  pathPrefix: string,
  defaultUser: string,
): Middleware {
  return async (ctx, next) => {
    if (ctx.method !== 'GET' || !ctx.path.startsWith(pathPrefix)) {
      await next();
      return;
    }
    const interaction = await provider.interactionDetails(ctx.req, ctx.res);
    let result: InteractionResults;
    switch (interaction.prompt.name) {
      case 'login': {
        const loginHint = interaction.params.login_hint;
        const named = ctx.get(LOGIN_AS_HEADER);
        const accountId =
          named !== ''
            ? named
            : typeof loginHint === 'string' && loginHint !== ''
              ? loginHint
              : defaultUser;
        result = { login: { accountId } };
        break;
      }
      case 'consent':
        result = { consent: { grantId: await grantEverythingRequested(provider, interaction) } };
        break;
      default:
        result = {
          error: 'access_denied',
          error_description: `unsupported prompt ${interaction.prompt.name}`,
        };
    }
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, {
      mergeWithLastSubmission: false,
    });
    ctx.redirect(returnTo);
    ctx.status = 303;
  };
}
