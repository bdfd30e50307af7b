/**
 * The PROXY header parser against headers built by an independent implementation
 * (proxy-protocol-js) and against the specification's edge cases: what it takes, what it refuses,
 * and that it never reads past the header into the client's own bytes.
 */
import * as pp from 'proxy-protocol-js';
import { describe, expect, it } from 'vitest';
import {
  isProxyHeaderStart,
  parseProxyHeader,
  type HeaderParse,
} from '../../src/proxy/proxy-protocol/parse.js';

const CLIENT_BYTES = Buffer.from('a1 LOGIN alice secret\r\n');

function v2(
  command: pp.Command,
  address: pp.ProxyAddress,
  transport = pp.TransportProtocol.STREAM,
) {
  return Buffer.from(new pp.V2ProxyProtocol(command, transport, address).build());
}

const ipv4From = (host: string, port: number) =>
  new pp.IPv4ProxyAddress(
    pp.IPv4Address.createFrom(host.split('.').map(Number) as pp.IPv4AddressTuple),
    port,
    pp.IPv4Address.createFrom([127, 0, 0, 1]),
    1993,
  );

function parsed(header: Buffer): HeaderParse {
  return parseProxyHeader(Buffer.concat([header, CLIENT_BYTES]));
}

describe('PROXY protocol version 1', () => {
  it('names the client of a TCP4 header and where the client bytes begin', () => {
    const header = Buffer.from(
      new pp.V1ProxyProtocol(
        pp.INETProtocol.TCP4,
        new pp.Peer('203.0.113.7', 40000),
        new pp.Peer('127.0.0.1', 1993),
      ).build(),
    );
    expect(parsed(header)).toEqual({
      status: 'complete',
      header: { kind: 'proxied', address: '203.0.113.7', port: 40000 },
      length: header.length,
    });
  });

  it('names the client of a TCP6 header', () => {
    const header = Buffer.from('PROXY TCP6 2001:db8::7 ::1 40000 1993\r\n');
    expect(parsed(header)).toMatchObject({
      header: { kind: 'proxied', address: '2001:db8::7', port: 40000 },
    });
  });

  it('keeps the connection address for UNKNOWN', () => {
    expect(parsed(Buffer.from('PROXY UNKNOWN\r\n'))).toMatchObject({ header: { kind: 'local' } });
  });

  it('waits for the rest of a header that arrives in pieces', () => {
    expect(parseProxyHeader(Buffer.from('PROXY TCP4 203.0.11'))).toEqual({ status: 'incomplete' });
    expect(parseProxyHeader(Buffer.from('PRO'))).toEqual({ status: 'incomplete' });
  });

  it.each([
    ['an address of the wrong family', 'PROXY TCP4 2001:db8::7 127.0.0.1 1 2\r\n'],
    ['a port out of range', 'PROXY TCP4 203.0.113.7 127.0.0.1 65536 2\r\n'],
    ['a port with a leading zero', 'PROXY TCP4 203.0.113.7 127.0.0.1 0143 2\r\n'],
    ['a missing field', 'PROXY TCP4 203.0.113.7 127.0.0.1 1\r\n'],
    ['an extra field', 'PROXY TCP4 203.0.113.7 127.0.0.1 1 2 3\r\n'],
    ['an unknown family', 'PROXY UDP4 203.0.113.7 127.0.0.1 1 2\r\n'],
    ['a header with no end within 107 bytes', `PROXY TCP4 ${'1'.repeat(120)}`],
    ['a client that speaks first', 'a1 LOGIN alice secret\r\n'],
  ])('refuses %s', (_, text) => {
    expect(parseProxyHeader(Buffer.from(text)).status).toBe('invalid');
  });
});

describe('PROXY protocol version 2', () => {
  it('names the client of an IPv4 stream, skipping nothing of the client bytes', () => {
    const header = v2(pp.Command.PROXY, ipv4From('203.0.113.7', 40000));
    expect(parsed(header)).toEqual({
      status: 'complete',
      header: { kind: 'proxied', address: '203.0.113.7', port: 40000 },
      length: header.length,
    });
  });

  it('names the client of an IPv6 stream, in the form Node reports addresses', () => {
    const address = (bytes: number[]) => pp.IPv6Address.createFrom(bytes as pp.IPv6AddressTuple);
    const documentation = [0x20, 1, 0xd, 0xb8, ...Array<number>(11).fill(0), 7];
    const mapped = [...Array<number>(10).fill(0), 0xff, 0xff, 198, 51, 100, 9];
    const loopback = [...Array<number>(15).fill(0), 1];
    for (const [bytes, expected] of [
      [documentation, '2001:db8::7'],
      [mapped, '::ffff:198.51.100.9'],
    ] as const) {
      const header = v2(
        pp.Command.PROXY,
        new pp.IPv6ProxyAddress(address([...bytes]), 40000, address(loopback), 1993),
      );
      expect(parsed(header)).toMatchObject({ header: { address: expected, port: 40000 } });
    }
  });

  it('keeps the connection address for LOCAL (health checks) and for datagrams', () => {
    expect(parsed(v2(pp.Command.LOCAL, ipv4From('203.0.113.7', 1)))).toMatchObject({
      header: { kind: 'local' },
    });
    const datagram = v2(pp.Command.PROXY, ipv4From('203.0.113.7', 1), pp.TransportProtocol.DGRAM);
    expect(parsed(datagram)).toMatchObject({ header: { kind: 'local' } });
  });

  it('skips TLVs after the addresses', () => {
    const header = v2(pp.Command.PROXY, ipv4From('203.0.113.7', 40000));
    const tlv = Buffer.from([0x05, 0x00, 0x03, 0x61, 0x62, 0x63]); // PP2_TYPE_UNIQUE_ID "abc"
    const withTlv = Buffer.concat([header, tlv]);
    withTlv.writeUInt16BE(header.readUInt16BE(14) + tlv.length, 14);
    expect(parsed(withTlv)).toMatchObject({
      header: { address: '203.0.113.7' },
      length: withTlv.length,
    });
  });

  it('waits for the declared length', () => {
    const header = v2(pp.Command.PROXY, ipv4From('203.0.113.7', 40000));
    for (let cut = 1; cut < header.length; cut += 1)
      expect(parseProxyHeader(header.subarray(0, cut))).toEqual({ status: 'incomplete' });
  });

  it('refuses another version, an unknown command and addresses cut short', () => {
    const header = v2(pp.Command.PROXY, ipv4From('203.0.113.7', 40000));
    const version1 = Buffer.from(header);
    version1[12] = 0x11;
    const command3 = Buffer.from(header);
    command3[12] = 0x23;
    const short = Buffer.from(header.subarray(0, 20));
    short.writeUInt16BE(4, 14);
    for (const bad of [version1, command3, short])
      expect(parseProxyHeader(bad).status).toBe('invalid');
  });
});

describe('recognising a header a client sent itself', () => {
  it('needs the whole version 1 prefix or version 2 signature', () => {
    expect(isProxyHeaderStart(Buffer.from('PROXY TCP4 1.2.3.4'))).toBe(true);
    expect(isProxyHeaderStart(v2(pp.Command.LOCAL, ipv4From('1.2.3.4', 1)))).toBe(true);
    expect(isProxyHeaderStart(Buffer.from('PROX'))).toBe(false);
    expect(isProxyHeaderStart(Buffer.from('\r\n'))).toBe(false);
    expect(isProxyHeaderStart(Buffer.from('a1 CAPABILITY\r\n'))).toBe(false);
  });
});
