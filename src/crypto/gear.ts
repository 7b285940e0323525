/**
 * The FastCDC gear table, keyed by the user's chunker key so that chunk boundaries (and therefore
 * chunk sizes) cannot be predicted by someone who does not hold the key.
 *
 * gear[8*j + i] = uint32 little-endian at bytes 4i..4i+3 of
 *                 BLAKE3-keyed(chunkerKey, "p2pbak-gear-v1" || byte j),   j = 0..31, i = 0..7
 */
import { KEY_BYTES } from './constants.js'
import { keyedHash } from './hash.js'

export const GEAR_TABLE_SIZE = 256
const GEAR_DOMAIN = 'p2pbak-gear-v1'

/** 256 uint32 gear values for FastCDC, derived deterministically from the chunker key (see docs/format/keys.md). */
export function deriveGearTable (chunkerKey: Uint8Array): Uint32Array {
  if (!(chunkerKey instanceof Uint8Array) || chunkerKey.byteLength !== KEY_BYTES) throw new RangeError(`chunker key must be ${KEY_BYTES} bytes`)
  const table = new Uint32Array(GEAR_TABLE_SIZE)
  const message = new Uint8Array(GEAR_DOMAIN.length + 1)
  message.set(new TextEncoder().encode(GEAR_DOMAIN))
  for (let j = 0; j < GEAR_TABLE_SIZE / 8; j++) {
    message[GEAR_DOMAIN.length] = j
    const block = keyedHash(chunkerKey, message)
    const view = new DataView(block.buffer, block.byteOffset, block.byteLength)
    for (let i = 0; i < 8; i++) table[8 * j + i] = view.getUint32(4 * i, true)
  }
  return table
}
