/**
 * The STUN Binding codec (src/protocols/stun.ts): the XOR-MAPPED-ADDRESS bytes of RFC 5769's sample
 * responses (§2.2 IPv4, §2.3 IPv6), round trips of any address and port, and requests that must get
 * no answer. The socket is tested with a real ICE agent in test/unit/node/stun-server.spec.ts.
 */
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { bindingRequestId, bindingResponse, parseBindingResponse, STUN_MAGIC_COOKIE } from '../../../src/protocols/stun.js'

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'))
/** RFC 5769 §2.2 and §2.3: the transaction id of the sample responses */
const RFC5769_ID = hex('b7 e7 a7 01 bc 34 d6 86 fa 87 df ae')

function request (id: Uint8Array, attrs: Uint8Array = new Uint8Array(0), type = 0x0001, cookie = STUN_MAGIC_COOKIE): Uint8Array {
  const out = new Uint8Array(20 + attrs.byteLength)
  const v = new DataView(out.buffer)
  v.setUint16(0, type)
  v.setUint16(2, attrs.byteLength)
  v.setUint32(4, cookie)
  out.set(id, 8)
  out.set(attrs, 20)
  return out
}

describe('STUN Binding codec (RFC 8489)', () => {
  it('encodes XOR-MAPPED-ADDRESS as RFC 5769\'s sample IPv4 response does (192.0.2.1:32853)', () => {
    const r = bindingResponse(RFC5769_ID, '192.0.2.1', 32853)
    assert.deepEqual(r.subarray(20, 32), hex('00 20 00 08 00 01 a1 47 e1 12 a6 43'))
    assert.deepEqual(r.subarray(0, 2), hex('01 01'))
    assert.deepEqual(r.subarray(8, 20), RFC5769_ID)
  })

  it('encodes XOR-MAPPED-ADDRESS as RFC 5769\'s sample IPv6 response does', () => {
    const r = bindingResponse(RFC5769_ID, '2001:db8:1234:5678:11:2233:4455:6677', 32853)
    assert.deepEqual(r.subarray(20, 44), hex('00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9'))
  })

  it('answers an IPv4 asker seen on a dual-stack socket (::ffff:a.b.c.d) with its IPv4 address', () => {
    const r = parseBindingResponse(bindingResponse(RFC5769_ID, '::ffff:198.18.0.11', 40000))
    assert.deepEqual(r && { address: r.address, port: r.port }, { address: '198.18.0.11', port: 40000 })
  })

  it('round-trips any address and port, with a valid FINGERPRINT', () => {
    const v6 = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }).map(w => w.map(x => x.toString(16)).join(':'))
    const v4 = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }).map(b => b.join('.'))
    fc.assert(fc.property(fc.uint8Array({ minLength: 12, maxLength: 12 }), fc.oneof(v4, v6), fc.integer({ min: 0, max: 0xffff }), (id, address, port) => {
      const msg = bindingResponse(id, address, port)
      const parsed = parseBindingResponse(msg)
      assert.ok(parsed !== undefined)
      assert.equal(parsed.address, address)
      assert.equal(parsed.port, port)
      assert.deepEqual(parsed.id, id)
      // one flipped bit anywhere in the message breaks the fingerprint (or the header)
      const bad = msg.slice()
      bad[msg.byteLength - 9] = (bad[msg.byteLength - 9] ?? 0) ^ 1
      assert.equal(parseBindingResponse(bad), undefined)
    }))
  })

  it('takes a Binding request, with or without attributes, and gives its transaction id', () => {
    const id = hex('000102030405060708090a0b')
    assert.deepEqual(bindingRequestId(request(id)), id)
    // a request as an ICE agent sends it to a STUN server may carry attributes (here SOFTWARE, padded)
    assert.deepEqual(bindingRequestId(request(id, hex('80 22 00 04 74 65 73 74'))), id)
  })

  it('ignores what is not a Binding request: other types, another cookie, a wrong length, too short or too long', () => {
    const id = new Uint8Array(12)
    assert.equal(bindingRequestId(request(id, undefined, 0x0101)), undefined, 'a response')
    assert.equal(bindingRequestId(request(id, undefined, 0x0011)), undefined, 'an indication')
    assert.equal(bindingRequestId(request(id, undefined, 0x0001, 0)), undefined, 'RFC 3489 (no cookie)')
    const lying = request(id, hex('80 22 00 04 74 65 73 74'))
    lying[3] = 12
    assert.equal(bindingRequestId(lying), undefined, 'length field beyond the datagram')
    assert.equal(bindingRequestId(request(id, hex('80 22 00 02 74 65'))), undefined, 'length not a multiple of 4')
    assert.equal(bindingRequestId(request(id).subarray(0, 19)), undefined, 'shorter than a header')
    assert.equal(bindingRequestId(request(id, new Uint8Array(1024))), undefined, 'longer than any Binding request')
    const notStun = request(id)
    notStun[0] = 0x80
    assert.equal(bindingRequestId(notStun), undefined, 'top bits set (RTP, DTLS)')
  })

  it('never throws on arbitrary datagrams', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 700 }), (bytes) => {
      bindingRequestId(bytes)
      parseBindingResponse(bytes)
    }), { numRuns: 2000 })
  })
})
