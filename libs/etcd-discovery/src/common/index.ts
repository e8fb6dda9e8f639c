export { Backoff, errorMessage, RECOVERY_BACKOFF, sleep, within, type BackoffOptions } from './backoff.js';
export { LogBudget } from './log-budget.js';
export { MAX_LOGGED_CHARS, printable } from './printable.js';
