/**
 * @packageDocumentation
 * Every byte layout p2pbak writes: packs, shares, trees, snapshot records and envelopes. Pure codecs
 * with versions and strict decoders; no I/O and no cryptography (callers encrypt). docs/format/ is
 * the specification.
 */
export * from './pack.js'
export * from './share.js'
export * from './tree.js'
export * from './snapshot.js'
export * from './gc-record.js'
