// Real connection counts from grpc-js's own channelz registry (in this process): the HTTP/2 sessions each server
// holds open, by listening port. Read through the handlers grpc-js exports for its channelz service, called in-process.
import { getChannelzHandlers } from '@grpc/grpc-js';

type Handler = (call: { request: Record<string, unknown> }, callback: (error: unknown, reply?: any) => void) => void;

const handlers = getChannelzHandlers() as unknown as Record<string, Handler>;

function ask(method: string, request: Record<string, unknown>): Promise<any> {
  return new Promise((resolve, reject) => handlers[method]({ request }, (error, reply) => (error ? reject(error) : resolve(reply))));
}

/** Paged channelz lists: `read(startId)` answers one page and whether it was the last. */
async function allPages<T>(read: (startId: number) => Promise<{ items: T[]; end: boolean; lastId: number }>): Promise<T[]> {
  const items: T[] = [];
  for (let startId = 0; ; ) {
    const page = await read(startId);
    items.push(...page.items);
    if (page.end || page.items.length === 0) return items;
    startId = page.lastId + 1;
  }
}

/** Open client connections (HTTP/2 sessions) of every grpc-js server in this process, by the port it listens on. */
export async function serverConnectionsByPort(): Promise<Map<number, number>> {
  const servers = await allPages<any>(async (startId) => {
    const reply = await ask('GetServers', { start_server_id: startId, max_results: 100 });
    return { items: reply.server, end: reply.end, lastId: Number(reply.server.at(-1)?.ref.server_id ?? startId) };
  });
  const byPort = new Map<number, number>();
  for (const server of servers) {
    const serverId = Number(server.ref.server_id);
    const sessions = await allPages(async (startId) => {
      const reply = await ask('GetServerSockets', { server_id: serverId, start_socket_id: startId, max_results: 100 });
      return { items: reply.socket_ref, end: reply.end, lastId: Number(reply.socket_ref.at(-1)?.socket_id ?? startId) };
    });
    for (const listener of server.listen_socket) {
      const { socket } = await ask('GetSocket', { socket_id: listener.socket_id });
      const port = socket.local?.tcpip_address?.port;
      if (port) byPort.set(port, (byPort.get(port) ?? 0) + sessions.length);
    }
  }
  return byPort;
}
