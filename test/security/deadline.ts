// A bound on steps that would otherwise wait forever (whenRegistered() has no timeout of its own).

/** Resolves as `promise` does, or rejects naming `what` after `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Milliseconds since `start` (a performance.now() reading), rounded. */
export const msSince = (start: number): number => Math.round(performance.now() - start);
