// Metrics through @opentelemetry/api when the app has it (an optional peer): the layers above call
// these, never the API. Imports nothing of ours but common/.
export { withCallCounting } from './calls-without-instance.interceptor.js';
export { ATTRIBUTES, INSTRUMENTS } from './instruments.js';
export * as telemetry from './telemetry.js';
