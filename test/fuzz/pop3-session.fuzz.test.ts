import { hostilePop3Conversation, pop3Conversation, pop3Rules } from './support/pop3-client.js';
import { sessionFuzzSuite } from './support/session-suite.js';

/** The POP3 pre-login state machine behind a real listener, driven by generated conversations. */
sessionFuzzSuite('POP3', pop3Rules, pop3Conversation, hostilePop3Conversation);
