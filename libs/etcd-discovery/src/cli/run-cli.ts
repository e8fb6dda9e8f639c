import { errorMessage } from '../common/backoff.js';
import { InvalidDiscoveryOptionsError } from '../options/invalid-options.error.js';
import { validateServiceName } from '../options/validate-options.js';
import { CliError, EXIT, UsageError } from './cli-errors.js';
import { parseCommandLine, type CommandLine } from './command-line.js';
import { helpText, PROGRAM } from './help-text.js';
import { note, out } from './output.js';

/** Runs one command line; resolves with the exit code. Nothing is thrown: every failure is a message on stderr. */
export async function runCli(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let commandLine: CommandLine | undefined;
  try {
    commandLine = parseCommandLine(argv);
    if (commandLine.kind === 'help') {
      out(helpText(commandLine.command));
      return EXIT.ok;
    }
    const { command, flags } = commandLine;
    const service = commandLine.service === undefined ? undefined : checkedServiceName(commandLine.service);
    // Loaded only now: the etcd client (grpc-js, protobufs) costs half a second that help and typos need not pay.
    const { resolveConnection } = await import('./connection.js');
    const connection = resolveConnection(flags, env);
    if (connection.warning) note(connection.warning);
    const json = flags.json === true;
    if (command === 'ls') return await (await import('./ls.command.js')).lsCommand(connection, { service, json });
    if (command === 'check') return await (await import('./check.command.js')).checkCommand(connection, { service, json });
    return await (await import('./watch.command.js')).watchCommand(connection, { service: service!, json });
  } catch (error) {
    if (error instanceof UsageError) {
      const command = error.command ?? (commandLine?.kind === 'run' ? commandLine.command : undefined);
      note(`${PROGRAM}: ${error.message}\nRun "${PROGRAM} ${command ? `${command} ` : ''}--help" for usage.`);
      return error.exitCode;
    }
    if (error instanceof CliError) {
      note(`${PROGRAM}: ${error.message}`);
      return error.exitCode;
    }
    note(`${PROGRAM}: unexpected error: ${error instanceof Error && error.stack ? error.stack : errorMessage(error)}`);
    return EXIT.findings;
  }
}

/** A client can only ask for names the module accepts; anything else is a typo here. */
function checkedServiceName(name: string): string {
  try {
    return validateServiceName('service', name);
  } catch (error) {
    if (error instanceof InvalidDiscoveryOptionsError) throw new UsageError(`service name ${JSON.stringify(name)} is invalid: ${error.fix}`);
    throw error;
  }
}
