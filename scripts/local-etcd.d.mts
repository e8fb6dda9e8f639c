// Hand-written types for local-etcd.mjs (keep in sync).

export interface StartEtcdOptions {
  /** Member name; default 'e1'. */
  name?: string;
  /** Data dir to use; default a fresh `os.tmpdir()/etcd-test-XXXXXX`. destroy() removes it either way. */
  dataDir?: string;
  /** Fixed ports disable the retry on "address already in use". Default: free loopback ports. */
  clientPort?: number;
  peerPort?: number;
  /** Appended after the generated flags. */
  extraArgs?: string[];
  /** Append etcd's output here; default: discarded (the last 50 lines are kept for error messages). */
  logFile?: string;
  /** Serve the client URL over https (peer traffic stays http on loopback); `endpoint` is then 'https://...'. */
  tls?: EtcdTlsOptions;
}

/** PEM file paths for an https client URL. */
export interface EtcdTlsOptions {
  /** --cert-file: the server certificate; it needs IP:127.0.0.1 in its subjectAltName. */
  certFile: string;
  /** --key-file */
  keyFile: string;
  /** --trusted-ca-file: the CA the health check trusts, and (with clientCertAuth) the one client certificates need. */
  trustedCaFile: string;
  /** --client-cert-auth: every client, the health check included, must present a certificate signed by the CA. */
  clientCertAuth?: boolean;
  /** The health check's client certificate with clientCertAuth; default certFile/keyFile (then it needs clientAuth usage). */
  clientCertFile?: string;
  clientKeyFile?: string;
}

export interface StartEtcdClusterOptions {
  /** Appended after the generated flags of every member. */
  extraArgs?: string[];
  /** Write each member's output to `${logDir}/${name}.log`. */
  logDir?: string;
}

export interface LocalEtcd {
  readonly name: string;
  /** 'http://127.0.0.1:<clientPort>' ('https://...' with the tls option) */
  readonly endpoint: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  /** PID of the running process; undefined while stopped. */
  readonly pid: number | undefined;
  /** SIGTERM, SIGKILL after 5 s, resolves once exited. Idempotent. */
  stop(): Promise<void>;
  /** Send `signal` (default SIGKILL) and wait for the exit (SIGKILL after 5 s if it is still alive). */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** SIGSTOP: the process hangs without closing its sockets. */
  pause(): void;
  /** SIGCONT */
  resume(): void;
  /** Stop if running, start again with the same data dir and ports, wait until healthy. */
  restart(): Promise<void>;
  /** stop(), then remove the data dir. */
  destroy(): Promise<void>;
}

export interface LocalEtcdCluster {
  /** Members e1..eN. */
  members: LocalEtcd[];
  endpoints: string[];
  /** The member that currently leads; polls until one is elected or timeoutMs (default 5000) passes. */
  leader(timeoutMs?: number): Promise<LocalEtcd>;
  stopAll(): Promise<void>;
  /** Stop every member, then start them all again (a quorum is needed to become healthy). */
  restartAll(): Promise<void>;
  destroy(): Promise<void>;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number>;
/** Start one etcd node on loopback and wait until `/health` reports true (15 s limit). */
export function startEtcd(options?: StartEtcdOptions): Promise<LocalEtcd>;
/** Start a new `size`-member cluster (default 3) on loopback and wait until every member is healthy. */
export function startEtcdCluster(size?: number, options?: StartEtcdClusterOptions): Promise<LocalEtcdCluster>;
/** Physically compact to the current revision; returns that revision. */
export function compact(endpoint: string): Promise<number>;
