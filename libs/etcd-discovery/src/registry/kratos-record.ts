import { parseHostPort, type HostPort } from '../common/host-port.js';

/**
 * Kratos' etcd registry writes its ServiceInstance as JSON: `{"id","name","version","metadata",
 * "endpoints":["grpc://host:port?isSecure=false","http://host:port"]}` (metadata is a string map).
 * We call its gRPC endpoint; `version` joins the metadata as the well-known field, and a whole-number
 * `weight` string (Kratos' weighted balancer reads strings) becomes a number.
 */
export interface KratosRecord {
  readonly address: HostPort;
  readonly metadata: Record<string, unknown>;
}

const GRPC_SCHEME = 'grpc://';
const WHOLE_NUMBER = /^\d{1,7}$/;

export function isKratosRecord(parsed: Record<string, unknown>): boolean {
  return parsed.Addr === undefined && Array.isArray(parsed.endpoints);
}

/** The record as ours, or why it cannot be called. */
export function readKratosRecord(parsed: Record<string, unknown>): KratosRecord | string {
  const endpoints = parsed.endpoints as unknown[];
  const grpc = endpoints.find((endpoint): endpoint is string => typeof endpoint === 'string' && endpoint.startsWith(GRPC_SCHEME));
  if (grpc === undefined) return 'Kratos record has no grpc:// endpoint';
  const authority = grpc.slice(GRPC_SCHEME.length).split(/[/?#]/, 1)[0];
  const address = parseHostPort(authority);
  if (!address) return 'Kratos grpc:// endpoint is not host:port';
  const given = parsed.metadata ?? {};
  if (typeof given !== 'object' || given === null || Array.isArray(given)) return 'Kratos "metadata" is not an object';
  const metadata: Record<string, unknown> = { ...(given as Record<string, unknown>) };
  if (typeof metadata.weight === 'string' && WHOLE_NUMBER.test(metadata.weight)) metadata.weight = Number(metadata.weight);
  if (typeof parsed.version === 'string' && parsed.version !== '') metadata.version = parsed.version;
  return { address, metadata };
}
