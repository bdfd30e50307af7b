import net from 'node:net';

/**
 * True for names and addresses that never leave this machine: `localhost` (and `*.localhost`,
 * RFC 6761), 127.0.0.0/8, ::1 and IPv4-mapped 127.x (how Node reports IPv4 clients on a dual-stack
 * socket). Accepts URL-style bracketed IPv6 (`[::1]`).
 */
export function isLoopbackHost(host: string): boolean {
  const name = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (net.isIPv4(name)) return name.startsWith('127.');
  if (net.isIPv6(name))
    return name === '::1' || name === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(name);
  return false;
}
