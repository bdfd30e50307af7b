import { hostileImapConversation, imapConversation, imapRules } from './support/imap-client.js';
import { sessionFuzzSuite } from './support/session-suite.js';

/** The IMAP pre-login state machine behind a real listener, driven by generated conversations. */
sessionFuzzSuite('IMAP', imapRules, imapConversation, hostileImapConversation);
