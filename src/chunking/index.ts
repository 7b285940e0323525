/**
 * Content-defined chunking (FastCDC with a keyed gear table). The gear table comes from the caller
 * (derived from the user's key by the crypto layer); this module imports no crypto.
 * Spec: docs/format/chunking.md.
 */
export { type ChunkerParams, DEFAULT_CHUNKER_PARAMS, validateChunkerParams } from './params.js'
export { FastCdc, chunkLengths, GEAR_TABLE_LENGTH } from './fastcdc.js'
export { StreamChunker } from './stream-chunker.js'
