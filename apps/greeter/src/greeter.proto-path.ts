import { fileURLToPath } from 'node:url';

/** The greeter proto ships with the app; the gateway reads the same file. */
export const GREETER_PROTO_PATH = fileURLToPath(new URL('../proto/greeter.proto', import.meta.url));
