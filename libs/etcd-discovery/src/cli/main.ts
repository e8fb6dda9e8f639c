#!/usr/bin/env node
// The package's `bin`: `npx nestjs-etcd-discovery ls | watch | check`. Nothing in the library imports this folder.
import { runCli } from './run-cli.js';

/** Closing the etcd client ends the process; this only guards against a handle left open (never holds it open). */
const EXIT_GRACE_MS = 2_000;

// Output is for people and scripts: grpc-js' TLS to an IP address (a ServerName Node deprecates) is nothing they can act on.
process.noDeprecation = true;

// `ls | head` closes stdout early: that is the reader's choice, not an error worth a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

process.exitCode = await runCli(process.argv.slice(2), process.env);
setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
