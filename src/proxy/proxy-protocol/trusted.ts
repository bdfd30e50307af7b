import { BlockList, isIPv4 } from 'node:net';
import type { ServerConfig } from '../../config/types.js';

const lists = new WeakMap<ServerConfig, BlockList>();

/**
 * Whether a connection from `remoteAddress` is one of the section's load balancers
 * (`proxy_protocol_from`), which must start with a PROXY header. Never true for a section without
 * the key: then nobody may say who the client is.
 */
export function fromTrustedBalancer(server: ServerConfig, remoteAddress: string | undefined) {
  const entries = server.proxyProtocolFrom;
  if (entries === undefined || entries.length === 0 || remoteAddress === undefined) return false;
  let list = lists.get(server);
  if (list === undefined) {
    list = new BlockList();
    for (const entry of entries) {
      const [address = '', prefix] = entry.split('/');
      const family = isIPv4(address) ? 'ipv4' : 'ipv6';
      if (prefix === undefined) list.addAddress(address, family);
      else list.addSubnet(address, Number(prefix), family);
    }
    lists.set(server, list);
  }
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remoteAddress);
  return mapped
    ? list.check(mapped[1]!, 'ipv4') || list.check(remoteAddress, 'ipv6')
    : list.check(remoteAddress, isIPv4(remoteAddress) ? 'ipv4' : 'ipv6');
}
