// A decoy: a real greeter registered in ANOTHER namespace of the scenario's etcd. Bad records point at it, so a
// bad record that got routed shows up as calls it served.
import { timeWhen } from '../support/wait.js';
import type { GreeterProcess, Scenario } from './scenario.js';

/** Starts the decoy and resolves once it is registered, with its key and address filled in. */
export async function startDecoy(s: Scenario): Promise<GreeterProcess> {
  const namespace = `${s.namespace}-decoy`;
  const decoy = await s.greeter({ name: 'decoy', waitRegistered: false, env: { DISCOVERY_NAMESPACE: namespace } });
  const found = await timeWhen(async () => (await s.view.range(`${namespace}/greeter/`)).kvs.length > 0, 20_000);
  if (!found) throw decoy.proc.failure('did not register in its own namespace');
  const kv = (await s.view.range(`${namespace}/greeter/`)).kvs[0];
  decoy.key = kv.key;
  decoy.address = (JSON.parse(kv.value) as { Addr: string }).Addr;
  return decoy;
}
