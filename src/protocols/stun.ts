/**
 * The part of STUN (RFC 8489, formerly RFC 5389) that a member with a public address serves to the
 * group (docs/network.md §15.7): a Binding request is answered with the address and port it came
 * from, so that a friend behind NAT learns the public side of its router's mapping and can offer it
 * as an ICE candidate for a WebRTC connection to another home.
 *
 *   message   type (2 bytes) | length of the attributes (2) | magic cookie 0x2112A442 (4)
 *             | transaction id (12) | attributes, each: type (2) | length (2) | value, padded to 4
 *   request   type 0x0001 (Binding request); every other message is ignored (no answer)
 *   response  type 0x0101 (Binding success), the request's transaction id, and two attributes:
 *             XOR-MAPPED-ADDRESS (0x0020): 0 | family (1: IPv4, 2: IPv6) | port ⊕ 0x2112
 *                                          | address ⊕ (cookie, and for IPv6 cookie ‖ transaction id)
 *             FINGERPRINT (0x8028): CRC-32 of the message before it (with the length already
 *                                   counting it) ⊕ 0x5354554E
 *
 * Nothing is authenticated (no MESSAGE-INTEGRITY): the answer only tells the asker what it can see
 * itself from outside. Pure functions; the socket is in node/stun-server.ts.
 */
import { crc32 } from 'node:zlib'
import { isIPv4, isIPv6 } from 'node:net'

export const STUN_MAGIC_COOKIE = 0x2112a442
export const STUN_HEADER_BYTES = 20
const BINDING_REQUEST = 0x0001
const BINDING_SUCCESS = 0x0101
const ATTR_XOR_MAPPED_ADDRESS = 0x0020
const ATTR_FINGERPRINT = 0x8028
const FINGERPRINT_XOR = 0x5354554e
/** the largest request answered (a Binding request from an ICE agent is under 100 bytes) */
export const STUN_MAX_REQUEST_BYTES = 548

/**
 * The transaction id of a well-formed Binding request, or undefined for anything else: too short or
 * too long, the two top bits set (not STUN), another cookie (RFC 3489 or not STUN), a length field
 * that disagrees with the datagram or is not a multiple of 4, or another message type.
 */
export function bindingRequestId (msg: Uint8Array): Uint8Array | undefined {
  if (msg.byteLength < STUN_HEADER_BYTES || msg.byteLength > STUN_MAX_REQUEST_BYTES) return undefined
  const view = new DataView(msg.buffer, msg.byteOffset, msg.byteLength)
  const type = view.getUint16(0)
  const length = view.getUint16(2)
  if ((type & 0xc000) !== 0 || type !== BINDING_REQUEST) return undefined
  if (view.getUint32(4) !== STUN_MAGIC_COOKIE) return undefined
  if (length % 4 !== 0 || length !== msg.byteLength - STUN_HEADER_BYTES) return undefined
  return msg.slice(8, STUN_HEADER_BYTES)
}

/** The Binding success response for transaction `id`, telling the asker it came from `address`:`port`. */
export function bindingResponse (id: Uint8Array, address: string, port: number): Uint8Array {
  if (id.byteLength !== 12) throw new RangeError('a STUN transaction id has 12 bytes')
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new RangeError(`not a port: ${port}`)
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1] ?? address
  const v4 = isIPv4(mapped)
  if (!v4 && !isIPv6(mapped)) throw new RangeError(`not an IP address: ${address}`)
  const addrBytes = v4 ? ipv4Bytes(mapped) : ipv6Bytes(mapped)
  const xorValueBytes = 4 + addrBytes.byteLength
  const total = STUN_HEADER_BYTES + 4 + xorValueBytes + 8
  const out = new Uint8Array(total)
  const view = new DataView(out.buffer)
  view.setUint16(0, BINDING_SUCCESS)
  view.setUint16(2, total - STUN_HEADER_BYTES)
  view.setUint32(4, STUN_MAGIC_COOKIE)
  out.set(id, 8)
  let at = STUN_HEADER_BYTES
  view.setUint16(at, ATTR_XOR_MAPPED_ADDRESS)
  view.setUint16(at + 2, xorValueBytes)
  view.setUint8(at + 4, 0)
  view.setUint8(at + 5, v4 ? 1 : 2)
  view.setUint16(at + 6, port ^ (STUN_MAGIC_COOKIE >>> 16))
  // the key is the cookie followed by the transaction id: bytes 4..20 of the header
  for (let i = 0; i < addrBytes.byteLength; i++) out[at + 8 + i] = (addrBytes[i] ?? 0) ^ (out[4 + i] ?? 0)
  at += 4 + xorValueBytes
  view.setUint16(at, ATTR_FINGERPRINT)
  view.setUint16(at + 2, 4)
  view.setUint32(at + 4, (crc32(out.subarray(0, at)) ^ FINGERPRINT_XOR) >>> 0)
  return out
}

/** What a Binding success response says (for tests and diagnostics): the mapped address, or undefined when it is not one. */
export function parseBindingResponse (msg: Uint8Array): { id: Uint8Array, address: string, port: number } | undefined {
  if (msg.byteLength < STUN_HEADER_BYTES) return undefined
  const view = new DataView(msg.buffer, msg.byteOffset, msg.byteLength)
  if (view.getUint16(0) !== BINDING_SUCCESS || view.getUint32(4) !== STUN_MAGIC_COOKIE) return undefined
  const end = STUN_HEADER_BYTES + view.getUint16(2)
  if (end !== msg.byteLength) return undefined
  let at = STUN_HEADER_BYTES
  let found: { address: string, port: number } | undefined
  while (at + 4 <= end) {
    const type = view.getUint16(at)
    const len = view.getUint16(at + 2)
    if (at + 4 + len > end) return undefined
    if (type === ATTR_FINGERPRINT && (view.getUint32(at + 4) !== ((crc32(msg.subarray(0, at)) ^ FINGERPRINT_XOR) >>> 0))) return undefined
    if (type === ATTR_XOR_MAPPED_ADDRESS && len >= 8) {
      const family = view.getUint8(at + 5)
      const port = view.getUint16(at + 6) ^ (STUN_MAGIC_COOKIE >>> 16)
      const n = family === 1 ? 4 : 16
      if (len < 4 + n) return undefined
      const bytes = Uint8Array.from(msg.subarray(at + 8, at + 8 + n), (b, i) => b ^ (msg[4 + i] ?? 0))
      found = { address: family === 1 ? [...bytes].join('.') : ipv6Text(bytes), port }
    }
    at += 4 + Math.ceil(len / 4) * 4
  }
  return found === undefined ? undefined : { id: msg.slice(8, STUN_HEADER_BYTES), ...found }
}

function ipv4Bytes (ip: string): Uint8Array { return Uint8Array.from(ip.split('.').map(Number)) }

function ipv6Bytes (ip: string): Uint8Array {
  const [head = '', tail] = ip.split('::')
  const words = (s: string): number[] => s === '' ? [] : s.split(':').flatMap(w => w.includes('.') ? [...ipv4Pair(w)] : [parseInt(w, 16)])
  const h = words(head)
  const t = tail === undefined ? [] : words(tail)
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t]
  const out = new Uint8Array(16)
  all.forEach((w, i) => { out[2 * i] = w >> 8; out[2 * i + 1] = w & 0xff })
  return out
}

function ipv4Pair (dotted: string): [number, number] {
  const [a = 0, b = 0, c = 0, d = 0] = dotted.split('.').map(Number)
  return [(a << 8) | b, (c << 8) | d]
}

function ipv6Text (bytes: Uint8Array): string {
  const words: string[] = []
  for (let i = 0; i < 16; i += 2) words.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16))
  return words.join(':')
}
