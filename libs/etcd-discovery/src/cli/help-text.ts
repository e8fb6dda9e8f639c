import type { CommandName } from './command-line.js';

export const PROGRAM = 'nestjs-etcd-discovery';

const CONNECTION = `Connection (a flag wins over etcdctl's environment variable):
  --endpoints <list>        comma list of etcd endpoints (ETCDCTL_ENDPOINTS); default http://127.0.0.1:2379.
                            host:port gets http://, or https:// when a TLS flag is given
  --cacert <file>           CA certificate of etcd's server certificate (ETCDCTL_CACERT)
  --cert <file>             client certificate (ETCDCTL_CERT); needs --key and --cacert
  --key <file>              client private key (ETCDCTL_KEY)
  --user <name:password>    etcd user (ETCDCTL_USER)
  --request-timeout <ms>    deadline of each etcd request; default 5000
  --namespace <prefix>      registry namespace; default /services`;

const OUTPUT = `Output:
  --allowed-addresses <list>  comma list of CIDRs, IPs, host names or *.domain: the module's allowedAddresses.
                              Without it, the default policy (no unspecified, multicast, broadcast or link-local)
  --json                      machine-readable output
  -h, --help                  this help`;

const EXIT_CODES = `Exit codes: 0 done (check: no finding), 1 check found problems, 2 usage error,
3 etcd could not be read (the message starts with "etcd unreachable", "TLS failed" or "permission denied").`;

const OVERVIEW = `Usage: ${PROGRAM} <command> [service] [flags]

Reads the service registry of nestjs-etcd-discovery (etcd's naming format, as Go's endpoints manager writes it):
keys <namespace>/<service>/<instanceId> holding {"Addr":"host:port","Metadata":{...}}.

Commands:
  ls [service]      services and their instances, as a client sees them
  watch <service>   one line per instance that joins, leaves or changes, until Ctrl-C
  check [service]   lint the registry; exit 1 when it finds a problem, 0 when clean

Run "${PROGRAM} <command> --help" for a command's details.`;

const COMMAND_HELP: Record<CommandName, string> = {
  ls: `Usage: ${PROGRAM} ls [service] [flags]

Lists the instances of every service under the namespace (or of one service) as a client routes to them: one
row per instance with its address, the zone, version and weight from its metadata, its age and the time its
lease has left. Age comes from the record's "startedAt" metadata (which this library's registrar writes); etcd
keeps no time of its own, so a record without it shows "-". TTL is the lease's remaining seconds (etcd's
LeaseTimeToLive); "-" for a key without a lease. Records a client skips (bad, duplicate, refused address) are
counted on stderr; "check" says why.`,
  watch: `Usage: ${PROGRAM} watch <service> [flags]

Prints the instances present when the watch starts ("present"), then one line per change: "joined", "left" or
"changed" (address or metadata), with the address, as a client sees the list. Runs until SIGINT (Ctrl-C) or
SIGTERM and then exits 0. With --json, one JSON object per line. A lost connection to etcd is reported on stderr
and retried; the watch resumes where it stopped.`,
  check: `Usage: ${PROGRAM} check [service] [flags]

Lints the registry under the namespace (or one service) and prints every finding:
  garbage          a value that is not a record (bad JSON, wrong types, not host:port, metadata out of bounds)
  oversized-value  a value over 64 KiB
  oversized-key    a key over 512 bytes after the service prefix (clients do not read it)
  bad-key          a key that is not <namespace>/<service>/<instanceId>
  refused-address  an address the address policy refuses (see --allowed-addresses)
  duplicate        a second key with an address already listed (clients route to the oldest only)
  bad-metadata     a weight, zone or version clients cannot use (they count it as the default)
  over-cap         a service over the 10,000 keys or 32 MiB clients hold; later keys are ignored
  no-lease         a key without a lease: it stays after its process dies
Exit 1 when there is a finding, 0 when the registry is clean.`,
};

export function helpText(command?: CommandName): string {
  return [command ? COMMAND_HELP[command] : OVERVIEW, CONNECTION, OUTPUT, EXIT_CODES].join('\n\n');
}
