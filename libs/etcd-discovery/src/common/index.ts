export { Backoff, errorMessage, RECOVERY_BACKOFF, sleep, type BackoffOptions } from './backoff.js';
