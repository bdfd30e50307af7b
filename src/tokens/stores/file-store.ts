/**
 * Today's INI file store behind the {@link TokenStore} interface, so the daemon and `tokens copy`
 * can take either store. Thin on purpose: the token redesign replaces it with a file store that
 * holds the lock file across `update`. Until then `update` is serialised within this process only.
 */

import type { StoredTokenFields } from '../../config/types.js';
import { TokenStore as IniTokenStore } from '../store.js';
import { parseIni } from '../../config/configparser.js';
import { readFile } from 'node:fs/promises';
import type { TokenStore } from './token-store.js';
import type { Decide } from './decide.js';

export class FileTokenStore implements TokenStore {
  readonly location: string;
  private readonly file: IniTokenStore;
  private updates: Promise<unknown> = Promise.resolve();

  constructor(path: string) {
    this.location = path;
    this.file = new IniTokenStore(path);
  }

  read(account: string): Promise<StoredTokenFields | undefined> {
    return this.file.read(account);
  }

  write(account: string, fields: StoredTokenFields): Promise<void> {
    return this.file.write(account, fields);
  }

  remove(account: string, fieldNames?: readonly (keyof StoredTokenFields)[]): Promise<void> {
    return this.file.remove(account, fieldNames);
  }

  update<T>(account: string, decide: Decide<T>): Promise<T> {
    const run = this.updates.then(async () => {
      const { change, result } = await decide(await this.file.read(account));
      if (change.kind === 'write') await this.file.write(account, change.fields);
      else if (change.kind === 'remove') await this.file.remove(account);
      return result;
    });
    this.updates = run.catch(() => undefined);
    return run;
  }

  async accounts(): Promise<string[]> {
    let text: string;
    try {
      text = await readFile(this.location, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const accounts: string[] = [];
    for (const name of parseIni(text, this.location).keys()) {
      if ((await this.file.read(name)) !== undefined) accounts.push(name);
    }
    return accounts;
  }

  onChange(): () => void {
    // Another process's write is seen at the next read: the file is read at every login.
    return () => undefined;
  }

  async idle(): Promise<void> {
    await this.updates;
    await this.file.idle();
  }

  close(): Promise<void> {
    return this.idle();
  }
}
