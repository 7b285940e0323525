/**
 * The libp2p peer id of an Ed25519 device key, computed without libp2p (docs/format/group.md §4.1):
 *
 *   peer id = base58btc( 0x00 0x24 || 0x08 0x01 0x12 0x20 || public key (32) )
 *
 * that is the identity multihash (code 0x00, length 36) of the key's libp2p protobuf encoding
 * (KeyType Ed25519 = 1, Data = the 32 raw bytes), in the Bitcoin base58 alphabet with no multibase
 * prefix: the `12D3KooW…` strings libp2p prints. Readers use it to check that the key which signed a
 * record is the device a certificate names.
 */
import { InvalidArgumentError } from '../errors.js'

const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
const PREFIX = Uint8Array.of(0x00, 0x24, 0x08, 0x01, 0x12, 0x20)

function base58btc (bytes: Uint8Array): string {
  let zeros = 0
  while (zeros < bytes.length && bytes[zeros] === 0) zeros++
  const digits: number[] = []
  for (const byte of bytes) {
    let carry = byte
    for (let i = 0; i < digits.length; i++) {
      carry += (digits[i] as number) << 8
      digits[i] = carry % 58
      carry = Math.floor(carry / 58)
    }
    while (carry > 0) { digits.push(carry % 58); carry = Math.floor(carry / 58) }
  }
  let out = '1'.repeat(zeros)
  for (let i = digits.length - 1; i >= 0; i--) out += ALPHABET[digits[i] as number]
  return out
}

/** The peer id string of the Ed25519 public key `publicKey` (32 bytes). */
export function peerIdOfEd25519 (publicKey: Uint8Array): string {
  if (!(publicKey instanceof Uint8Array) || publicKey.byteLength !== 32) throw new InvalidArgumentError('an Ed25519 public key is 32 bytes')
  const bytes = new Uint8Array(PREFIX.byteLength + 32)
  bytes.set(PREFIX)
  bytes.set(publicKey, PREFIX.byteLength)
  return base58btc(bytes)
}
