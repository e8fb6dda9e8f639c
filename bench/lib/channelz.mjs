// Real connection counts from grpc-js's channelz registry in this process, read through the handlers grpc-js
// exports for its channelz service (called in-process): the HTTP/2 sessions each server holds open, by listening
// port, and the connected transports of one client channel's subchannels, by target address.
import { getChannelzHandlers } from '@grpc/grpc-js';

const handlers = getChannelzHandlers();

const ask = (method, request) => new Promise((resolve, reject) => handlers[method]({ request }, (error, reply) => (error ? reject(error) : resolve(reply))));

/** Every page of a channelz list: `read(startId)` answers `{ items, end, lastId }`. */
async function allPages(read) {
  const items = [];
  for (let startId = 0; ;) {
    const page = await read(startId);
    items.push(...page.items);
    if (page.end || page.items.length === 0) return items;
    startId = page.lastId + 1;
  }
}

/** Open client connections of every grpc-js server in this process, by the port it listens on. */
export async function serverConnectionsByPort() {
  const servers = await allPages(async (startId) => {
    const reply = await ask('GetServers', { start_server_id: startId, max_results: 100 });
    return { items: reply.server, end: reply.end, lastId: Number(reply.server.at(-1)?.ref.server_id ?? startId) };
  });
  const byPort = new Map();
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

/** Connected transports of a grpc-js channel's subchannels, by target address ("127.0.0.1:50051"). */
export async function channelConnections(channel) {
  const { channel: info } = await ask('GetChannel', { channel_id: channel.getChannelzRef().id });
  const byTarget = new Map();
  for (const ref of info.subchannel_ref) {
    const { subchannel } = await ask('GetSubchannel', { subchannel_id: ref.subchannel_id });
    const open = subchannel.socket_ref.length;
    if (open > 0) byTarget.set(subchannel.data.target, (byTarget.get(subchannel.data.target) ?? 0) + open);
  }
  return byTarget;
}
