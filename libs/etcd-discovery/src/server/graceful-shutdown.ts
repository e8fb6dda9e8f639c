import type { Server } from '@grpc/grpc-js';

export type ShutdownOutcome = 'graceful' | 'forced';

/** tryShutdown lets in-flight calls finish; after the deadline the rest are cancelled. */
export function shutdownGracefully(server: Server, deadlineMs: number): Promise<ShutdownOutcome> {
  return new Promise((resolve) => {
    const deadline = setTimeout(() => {
      server.forceShutdown();
      resolve('forced');
    }, deadlineMs);
    server.tryShutdown(() => {
      clearTimeout(deadline);
      resolve('graceful');
    });
  });
}
