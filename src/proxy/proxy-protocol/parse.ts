/**
 * The PROXY protocol header a load balancer puts before the client's first byte (HAProxy's
 * proxy-protocol.txt, versions 1 and 2): who the real client is. Parsing is incremental (a header
 * may arrive in pieces) and bounded: a version 1 header is at most 107 bytes, a version 2 header
 * 16 bytes plus the length it declares.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** The client the balancer speaks for, or `local`: use the connection's own address (a health check). */
export type ProxyHeader =
  | { readonly kind: 'proxied'; readonly address: string; readonly port: number }
  | { readonly kind: 'local' };

export type HeaderParse =
  | { readonly status: 'incomplete' }
  | { readonly status: 'invalid'; readonly reason: string }
  | { readonly status: 'complete'; readonly header: ProxyHeader; readonly length: number };

export const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** Longest version 1 header, CRLF included (the specification's own bound). */
export const V1_MAX_BYTES = 107;
const V2_FIXED_BYTES = 16;

const INCOMPLETE: HeaderParse = { status: 'incomplete' };
const LOCAL: ProxyHeader = { kind: 'local' };

/** Whether `bytes` begin (as far as they go) like a header of either version. */
export function startsLikeProxyHeader(bytes: Buffer): boolean {
  const v1 = bytes.subarray(0, V1_PREFIX.length);
  const v2 = bytes.subarray(0, V2_SIGNATURE.length);
  return (
    (v1.length > 0 && v1.equals(V1_PREFIX.subarray(0, v1.length))) ||
    (v2.length > 0 && v2.equals(V2_SIGNATURE.subarray(0, v2.length)))
  );
}

/**
 * Whether a client's first bytes are a PROXY header (all of the version 1 prefix or the version 2
 * signature, so a short first line is never mistaken for one).
 */
export function isProxyHeaderStart(bytes: Buffer): boolean {
  return (
    bytes.subarray(0, V1_PREFIX.length).equals(V1_PREFIX) ||
    bytes.subarray(0, V2_SIGNATURE.length).equals(V2_SIGNATURE)
  );
}

/** Parses the header at the start of `bytes`; `length` is where the client's own bytes begin. */
export function parseProxyHeader(bytes: Buffer): HeaderParse {
  if (!startsLikeProxyHeader(bytes))
    return { status: 'invalid', reason: 'the connection did not start with a PROXY header' };
  if (bytes[0] === V1_PREFIX[0]) return parseV1(bytes);
  return parseV2(bytes);
}

function parseV1(bytes: Buffer): HeaderParse {
  const end = bytes.subarray(0, V1_MAX_BYTES).indexOf('\r\n');
  if (end < 0)
    return bytes.length >= V1_MAX_BYTES
      ? { status: 'invalid', reason: `a version 1 header longer than ${V1_MAX_BYTES} bytes` }
      : INCOMPLETE;
  const length = end + 2;
  const fields = bytes.subarray(V1_PREFIX.length, end).toString('latin1').split(' ');
  const [family, source, destination, sourcePort, destinationPort, ...extra] = fields;
  if (family === 'UNKNOWN') return { status: 'complete', header: LOCAL, length };
  const isFamily = family === 'TCP4' ? isIPv4 : family === 'TCP6' ? isIPv6 : undefined;
  if (isFamily === undefined)
    return { status: 'invalid', reason: `unknown version 1 family ${JSON.stringify(family)}` };
  const port = v1Port(sourcePort);
  if (
    extra.length > 0 ||
    !isFamily(source ?? '') ||
    !isFamily(destination ?? '') ||
    port === undefined ||
    v1Port(destinationPort) === undefined
  )
    return { status: 'invalid', reason: 'a malformed version 1 header' };
  return { status: 'complete', header: { kind: 'proxied', address: source!, port }, length };
}

function v1Port(text: string | undefined): number | undefined {
  if (text === undefined || !/^(0|[1-9]\d{0,4})$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65_535 ? port : undefined;
}

function parseV2(bytes: Buffer): HeaderParse {
  if (bytes.length < V2_FIXED_BYTES) return INCOMPLETE;
  const versionCommand = bytes[12]!;
  const familyTransport = bytes[13]!;
  const length = V2_FIXED_BYTES + bytes.readUInt16BE(14);
  if (versionCommand >> 4 !== 2)
    return { status: 'invalid', reason: `version 2 signature with version ${versionCommand >> 4}` };
  const command = versionCommand & 0x0f;
  if (command > 1) return { status: 'invalid', reason: `unknown version 2 command ${command}` };
  if (bytes.length < length) return INCOMPLETE;
  // LOCAL: the balancer's own connection (its health checks); the addresses, if any, mean nothing.
  if (command === 0) return { status: 'complete', header: LOCAL, length };

  const body = bytes.subarray(V2_FIXED_BYTES, length);
  const family = familyTransport >> 4;
  const stream = (familyTransport & 0x0f) === 1;
  const addressBytes = family === 1 ? 4 : family === 2 ? 16 : 0;
  // UNSPEC, AF_UNIX or datagrams: nothing to trust, so the connection's own address stands.
  if (addressBytes === 0 || !stream) return { status: 'complete', header: LOCAL, length };
  if (body.length < addressBytes * 2 + 4)
    return { status: 'invalid', reason: 'a version 2 header too short for its addresses' };
  const address = family === 1 ? ipv4(body.subarray(0, 4)) : ipv6(body.subarray(0, 16));
  const port = body.readUInt16BE(addressBytes * 2);
  return { status: 'complete', header: { kind: 'proxied', address, port }, length };
}

function ipv4(bytes: Buffer): string {
  return Array.from(bytes).join('.');
}

const IPV4_MAPPED = Buffer.from('00000000000000000000ffff', 'hex');

/** In the form Node's sockets report: `::ffff:a.b.c.d` for mapped IPv4, zeros compressed. */
function ipv6(bytes: Buffer): string {
  if (bytes.subarray(0, 12).equals(IPV4_MAPPED)) return `::ffff:${ipv4(bytes.subarray(12))}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1);
}
