/** What a command may touch of the outside world: injected, so tests run the CLI in-process. */
import type { Readable, Writable } from 'node:stream'

export interface CliIo {
  stdout: Writable & { isTTY?: boolean, columns?: number }
  stderr: Writable & { isTTY?: boolean, columns?: number }
  stdin: Readable & { isTTY?: boolean, setRawMode?: (mode: boolean) => unknown }
  env: Record<string, string | undefined>
  /** AbortSignal raised on SIGINT */
  signal?: AbortSignal
  /** the caller's working directory (relative paths are resolved against it) */
  cwd?: string
}

export function print (io: CliIo, text: string): void { io.stdout.write(text.endsWith('\n') ? text : text + '\n') }
/**
 * Lines of a listing (ls, find, diff, snapshots). To a terminal each line goes as it comes; to a pipe
 * or a file they go 64 KiB at a time, as C's stdio buffers them (`ls` of a folder of 2,023 entries
 * made 2,349 write calls, now 317). Call end() once the listing is done, also after a failure.
 */
export function lineWriter (io: CliIo): { line: (text: string) => void, end: () => void } {
  if (io.stdout.isTTY === true) return { line: (text) => { print(io, text) }, end: () => {} }
  let pending: string[] = []
  let bytes = 0
  const end = (): void => {
    if (pending.length === 0) return
    io.stdout.write(pending.join(''))
    pending = []
    bytes = 0
  }
  return {
    line: (text) => {
      const l = text.endsWith('\n') ? text : text + '\n'
      pending.push(l)
      bytes += l.length
      if (bytes >= LINE_BUFFER_CHARS) end()
    },
    end
  }
}
const LINE_BUFFER_CHARS = 64 * 1024

export function printErr (io: CliIo, text: string): void { io.stderr.write(text.endsWith('\n') ? text : text + '\n') }
export function printJson (io: CliIo, value: unknown): void {
  io.stdout.write(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n')
}

export function formatBytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  let v = n
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`
}

export function formatDuration (ms: number): string {
  if (ms < 1000) return `${ms} ms`
  const s = ms / 1000
  if (s < 60) return `${s.toFixed(1)} s`
  const m = Math.floor(s / 60)
  return `${m}m${Math.round(s - m * 60)}s`
}

export function formatTimeNs (ns: bigint): string {
  return new Date(Number(ns / 1_000_000n)).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '')
}
