import { parseArgs } from 'node:util';
import { UsageError } from './cli-errors.js';

export const COMMANDS = ['ls', 'watch', 'check'] as const;
export type CommandName = (typeof COMMANDS)[number];

/** Every command takes the same flags: one connection, one address policy, one output format. */
const FLAGS = {
  endpoints: { type: 'string' },
  namespace: { type: 'string' },
  cacert: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  user: { type: 'string' },
  'request-timeout': { type: 'string' },
  'allowed-addresses': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface FlagValues {
  readonly endpoints?: string;
  readonly namespace?: string;
  readonly cacert?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly user?: string;
  readonly 'request-timeout'?: string;
  readonly 'allowed-addresses'?: string;
  readonly json?: boolean;
  readonly help?: boolean;
}

export type CommandLine =
  | { readonly kind: 'help'; readonly command?: CommandName }
  | { readonly kind: 'run'; readonly command: CommandName; readonly service?: string; readonly flags: FlagValues };

/** Parses with Node's own parser (strict: an unknown flag or a missing value is a usage error). */
export function parseCommandLine(argv: readonly string[]): CommandLine {
  let parsed: { values: FlagValues; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...argv], options: FLAGS, allowPositionals: true, strict: true });
  } catch (error) {
    // parseArgs' messages name the flag and say what is wrong with it; drop its hint about `--` (not ours).
    throw new UsageError(String((error as Error).message).replace(/\s*To specify a positional argument.*$/s, ''), commandIn(argv));
  }
  const [name, service, ...extra] = parsed.positionals;
  if (name === 'help' || (name === undefined && parsed.values.help)) return { kind: 'help', command: commandNamed(service) };
  if (name === undefined) throw new UsageError(`give a command: ${COMMANDS.join(', ')}`);
  const command = commandNamed(name);
  if (!command) throw new UsageError(`unknown command "${name}": use ${COMMANDS.join(', ')}`);
  if (parsed.values.help) return { kind: 'help', command };
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`, command);
  if (command === 'watch' && service === undefined) throw new UsageError('watch needs a service name: watch <service>', command);
  return { kind: 'run', command, service, flags: parsed.values };
}

function commandNamed(name: string | undefined): CommandName | undefined {
  return COMMANDS.find((command) => command === name);
}

function commandIn(argv: readonly string[]): CommandName | undefined {
  return commandNamed(argv.find((arg) => !arg.startsWith('-')));
}
