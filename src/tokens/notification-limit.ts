import type { Logger } from 'pino';

/** How many `authorisation_needed` notifications may go out in a minute. */
const NOTIFICATIONS_PER_MINUTE = 10;

/**
 * At most {@link NOTIFICATIONS_PER_MINUTE} `authorisation_needed` events a minute: each may run
 * the notification command, and a catch-all section lets anyone make up addresses.
 */
export class NotificationLimit {
  /** When the last notifications went out. */
  private readonly sent: number[] = [];

  constructor(private readonly log: Logger) {}

  /** Whether a notification for `account` may go out now (and counts it if so). */
  allow(account: string): boolean {
    const now = Date.now();
    while (this.sent.length > 0 && this.sent[0]! <= now - 60_000) this.sent.shift();
    if (this.sent.length >= NOTIFICATIONS_PER_MINUTE) {
      this.log.warn(
        { event: 'notification_suppressed', account },
        'too many authorisations needed this minute; no notification sent for this one',
      );
      return false;
    }
    this.sent.push(now);
    return true;
  }
}
