export { Backoff, errorMessage, RECOVERY_BACKOFF, sleep, within, type BackoffOptions } from './backoff.js';
