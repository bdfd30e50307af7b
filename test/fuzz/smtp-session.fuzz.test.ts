import { hostileSmtpConversation, smtpConversation, smtpRules } from './support/smtp-client.js';
import { sessionFuzzSuite } from './support/session-suite.js';

/** The SMTP pre-authentication state machine behind a real listener, driven by generated conversations. */
sessionFuzzSuite('SMTP', smtpRules, smtpConversation, hostileSmtpConversation);
