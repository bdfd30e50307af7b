/**
 * The PostgreSQL store's schema, created and upgraded by the proxy itself. A version table records
 * which migrations ran; an advisory lock held around the upgrade lets several instances start at
 * once (the first upgrades, the others wait and then find nothing to do).
 */

import type { ClientBase } from 'pg';

/** Advisory lock keys of this program: (LOCK_SPACE, 0) guards migrations, (LOCK_SPACE + 1, hash) an account. */
export const LOCK_SPACE = 0x6f326d70; // "o2mp"
export const TOKENS_TABLE = 'oauth2_mail_proxy_tokens';
export const VERSION_TABLE = 'oauth2_mail_proxy_schema';
/** The NOTIFY channel every write announces its account on. */
export const CHANGE_CHANNEL = 'oauth2_mail_proxy_tokens';

/** Each entry upgrades the schema from its index to index + 1. Never edit one that shipped. */
const MIGRATIONS: readonly string[] = [
  // 1: one row per account, the same encrypted fields as a section of the INI store.
  `CREATE TABLE ${TOKENS_TABLE} (
     account text PRIMARY KEY,
     access_token text,
     access_token_expiry text,
     refresh_token text,
     token_salt text,
     token_iterations text,
     client_secret_encrypted text,
     last_activity text,
     updated_at timestamptz NOT NULL DEFAULT now()
   )`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Brings the schema to {@link SCHEMA_VERSION}. Returns the version found before.
 *
 * @throws Error when the database holds a newer schema than this program knows
 */
export async function migrate(client: ClientBase): Promise<number> {
  await client.query('SELECT pg_advisory_lock($1, 0)', [LOCK_SPACE]);
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS ${VERSION_TABLE} (version integer NOT NULL)`);
    const found = await client.query<{ version: number | null }>(
      `SELECT max(version) AS version FROM ${VERSION_TABLE}`,
    );
    const before = found.rows[0]?.version ?? 0;
    if (before > SCHEMA_VERSION) {
      throw new Error(
        `the database holds schema version ${before}, newer than this proxy's ${SCHEMA_VERSION}; upgrade the proxy`,
      );
    }
    for (let version = before; version < SCHEMA_VERSION; version += 1) {
      await client.query('BEGIN');
      try {
        await client.query(MIGRATIONS[version]!);
        await client.query(`INSERT INTO ${VERSION_TABLE} (version) VALUES ($1)`, [version + 1]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      }
    }
    return before;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1, 0)', [LOCK_SPACE]);
  }
}
