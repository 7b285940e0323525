/**
 * Writes test/vectors/snapshot.json: golden encodings of snapshot records, the signing bytes and the envelope
 * (docs/format/trees-and-snapshots.md). Run once with `npx tsx test/vectors/generate-snapshot.ts`;
 * test/unit/format/snapshot.spec.ts checks the file. The `sealed` and `signature` bytes are fixed patterns,
 * not real ciphertext or a real signature: this format layer treats them as opaque.
 */
import { writeFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { decodeSnapshotRecord, encodeSnapshotEnvelope, encodeSnapshotRecord, snapshotSigningBytes } from '../../src/format/snapshot.js'
import type { SnapshotEnvelope, SnapshotRecord, SnapshotSummary } from '../../src/format/snapshot.js'
import { asSnapshotId, asTreeId } from '../../src/ids.js'
import { fromHex, toHex } from '../../src/util/bytes.js'

export interface RecordJson {
  version: 1
  time: string
  endTime: string
  host: string
  user: string
  userId: string
  paths: string[]
  tags: string[]
  tree: string
  parent?: string
  summary: SnapshotSummary
  program: string
}
export interface EnvelopeJson { userId: string, sealed: string, signature: string }

export function recordToJson (r: SnapshotRecord): RecordJson {
  const j: RecordJson = {
    version: r.version, time: r.time.toString(), endTime: r.endTime.toString(), host: r.host, user: r.user, userId: r.userId,
    paths: r.paths, tags: r.tags, tree: toHex(r.tree), summary: r.summary, program: r.program
  }
  if (r.parent !== undefined) j.parent = toHex(r.parent)
  return j
}

export function recordFromJson (j: RecordJson): SnapshotRecord {
  const r: SnapshotRecord = {
    version: j.version, time: BigInt(j.time), endTime: BigInt(j.endTime), host: j.host, user: j.user, userId: j.userId,
    paths: [...j.paths], tags: [...j.tags], tree: asTreeId(fromHex(j.tree)), summary: { ...j.summary }, program: j.program
  }
  if (j.parent !== undefined) r.parent = asSnapshotId(fromHex(j.parent))
  return r
}

export function envelopeFromJson (j: EnvelopeJson): SnapshotEnvelope {
  return { userId: fromHex(j.userId), sealed: fromHex(j.sealed), signature: fromHex(j.signature) }
}

const USER_ID = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a'
const pattern = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (seed + i * 7) & 0xff)

export function fullRecord (): SnapshotRecord {
  return {
    version: 1,
    time: 1700000000123456789n,
    endTime: 1700000123987654321n,
    host: 'laptop',
    user: 'alice',
    userId: USER_ID,
    paths: ['/home/alice', '/etc/hosts', '/srv/données'],
    tags: ['daily', 'before-upgrade'],
    tree: asTreeId(new Uint8Array(32).fill(0x22)),
    parent: asSnapshotId(new Uint8Array(32).fill(0x99)),
    summary: { filesNew: 10, filesChanged: 3, filesUnchanged: 12345, dirs: 678, bytesRead: 987654321, bytesAdded: 123456, errors: 1 },
    program: 'p2pbak 0.1.0'
  }
}

export function minimalRecord (): SnapshotRecord {
  return {
    version: 1,
    time: -1n,
    endTime: 0n,
    host: '',
    user: '',
    userId: USER_ID,
    paths: [],
    tags: [],
    tree: asTreeId(new Uint8Array(32)),
    summary: { filesNew: 0, filesChanged: 0, filesUnchanged: 0, dirs: 0, bytesRead: 0, bytesAdded: 0, errors: 0 },
    program: ''
  }
}

export function buildSnapshotVectors (): object {
  const records = [
    { name: 'full', description: 'every field, with a parent', record: fullRecord() },
    { name: 'minimal', description: 'empty strings and lists, no parent, negative start time', record: minimalRecord() }
  ].map(c => {
    const bytes = encodeSnapshotRecord(c.record)
    return { name: c.name, description: c.description, record: recordToJson(decodeSnapshotRecord(bytes)), hex: toHex(bytes) }
  })
  const envelope: SnapshotEnvelope = { userId: fromHex(USER_ID), sealed: pattern(48, 0xa0), signature: pattern(64, 0x05) }
  return {
    format: 'p2pbak snapshot record v1 and envelope v1',
    spec: 'docs/format/trees-and-snapshots.md',
    records,
    envelope: {
      description: 'sealed and signature are fixed byte patterns, not real ciphertext or a real signature',
      envelope: { userId: toHex(envelope.userId), sealed: toHex(envelope.sealed), signature: toHex(envelope.signature) },
      signingBytesHex: toHex(snapshotSigningBytes(envelope.userId, envelope.sealed)),
      hex: toHex(encodeSnapshotEnvelope(envelope))
    }
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = new URL('./snapshot.json', import.meta.url)
  writeFileSync(out, JSON.stringify(buildSnapshotVectors(), null, 2) + '\n')
}
