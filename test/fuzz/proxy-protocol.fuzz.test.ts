import fc from 'fast-check';
import * as pp from 'proxy-protocol-js';
import { describe, expect, it } from 'vitest';
import {
  parseProxyHeader,
  V1_MAX_BYTES,
  V2_SIGNATURE,
} from '../../src/proxy/proxy-protocol/parse.js';
import { check, runsFor, timeoutFor } from './support/runs.js';

/**
 * The PROXY header parser sits in front of every connection from a load balancer: whatever
 * arrives, it answers incomplete, invalid or complete without throwing, never claims more bytes
 * than it was given, and reads every header an independent implementation builds, in any split.
 */

const runs = runsFor('parser', 2000);

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255));
const port = fc.nat(65_535);

/** A header built by proxy-protocol-js naming `address:port`, of either version. */
const builtHeader = fc.oneof(
  fc.tuple(ipv4, port).map(([octets, sourcePort]) => ({
    address: octets.join('.'),
    port: sourcePort,
    bytes: Buffer.from(
      new pp.V1ProxyProtocol(
        pp.INETProtocol.TCP4,
        new pp.Peer(octets.join('.'), sourcePort),
        new pp.Peer('127.0.0.1', 1993),
      ).build(),
    ),
  })),
  fc.tuple(ipv4, port).map(([octets, sourcePort]) => ({
    address: octets.join('.'),
    port: sourcePort,
    bytes: Buffer.from(
      new pp.V2ProxyProtocol(
        pp.Command.PROXY,
        pp.TransportProtocol.STREAM,
        new pp.IPv4ProxyAddress(
          pp.IPv4Address.createFrom(octets),
          sourcePort,
          pp.IPv4Address.createFrom([127, 0, 0, 1]),
          1993,
        ),
      ).build(),
    ),
  })),
);

/** Bytes that start like a header often enough to reach past the first check. */
const hostileBytes = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
  fc
    .tuple(fc.constantFrom('PROXY ', 'PROXY TCP4 ', 'PROXY TCP6 ', 'PROXY UNKNOWN'), fc.string())
    .map(([prefix, rest]) => Buffer.from(prefix + rest)),
  fc
    .tuple(fc.uint8Array({ minLength: 4, maxLength: 80 }))
    .map(([rest]) => Buffer.concat([V2_SIGNATURE, Buffer.from(rest)])),
);

describe('PROXY header parser under fuzzing', () => {
  it(
    'answers every input without throwing and never claims bytes it was not given',
    async () => {
      await check(
        'PROXY header: hostile bytes',
        fc.property(hostileBytes, (bytes) => {
          const parse = parseProxyHeader(bytes);
          if (parse.status !== 'complete') return;
          expect(parse.length).toBeLessThanOrEqual(bytes.length);
          if (bytes[0] === 0x50) expect(parse.length).toBeLessThanOrEqual(V1_MAX_BYTES);
        }),
        runs,
      );
    },
    timeoutFor(runs, 1),
  );

  it(
    'reads every built header, whatever follows it, and waits on any prefix of it',
    async () => {
      await check(
        'PROXY header: built headers',
        fc.property(
          builtHeader,
          fc.uint8Array({ maxLength: 64 }),
          fc.nat(),
          (built, after, cutAt) => {
            const whole = Buffer.concat([built.bytes, Buffer.from(after)]);
            expect(parseProxyHeader(whole)).toEqual({
              status: 'complete',
              header: { kind: 'proxied', address: built.address, port: built.port },
              length: built.bytes.length,
            });
            const cut = cutAt % built.bytes.length;
            expect(parseProxyHeader(built.bytes.subarray(0, cut)).status).toBe(
              cut === 0 ? 'invalid' : 'incomplete',
            );
          },
        ),
        runs,
      );
    },
    timeoutFor(runs, 1),
  );
});
