/**
 * Process-wide memory settings of a process that moves pack data: the daemon, and a command that
 * backs up, restores or reads packs in the CLI's own process (docs/benchmarks.md, "Where a persister's
 * memory goes" and "Where a publisher's memory goes"). `main.ts` applies them for those commands only,
 * never for a short command or a command handed to a daemon.
 *
 * - V8's young generation stays at the size it has when the process starts (1–2 MiB per semi-space)
 *   instead of growing to 16 MiB per semi-space (32 MiB of RSS) after a burst of allocation that
 *   survives a scavenge. The short-lived objects of a backup or a daemon are small (the bytes of
 *   buffers live outside V8's heap), so a small young generation costs a few more scavenges, not memory.
 * - glibc's malloc: a trim of the heaps every few seconds, and in the daemon a fixed mmap threshold,
 *   so that a freed share, part or read buffer leaves RSS at once (native/fsx-mem.c; skipped without
 *   the addon or on another C library). A command does not fix the threshold: a backup then spent
 *   about 16 % more CPU and a restore 13 % (a fresh mapping and its page faults for every buffer of
 *   128 KiB or more) for 8 MiB less peak RSS at scale 0.1 (docs/benchmarks.md).
 */
import { setV8Flag } from '../util/v8-flags.js'

/** Blocks of this many bytes or more get their own mapping (glibc's default before it adapts). */
export const MMAP_THRESHOLD_BYTES = 128 * 1024
/** How often the C heaps give their free pages back. */
export const TRIM_EVERY_MS = 5_000

export interface ProcessMemory {
  /** whether the allocator calls are in effect (the addon loaded; with fixMmapThreshold, on glibc: a trim elsewhere does nothing) */
  readonly malloc: boolean
  /** stops the periodic trim */
  stop: () => void
}

/**
 * Keeps V8's young generation at its present capacity: V8 reads this flag each time it would grow
 * it. Called as soon as the command is known (main.ts), before the modules and the key derivation
 * have made it grow.
 */
export function limitYoungGeneration (): void {
  setV8Flag('--semi-space-growth-factor=1')
}

export interface TuneOptions {
  /** fix glibc's mmap threshold at MMAP_THRESHOLD_BYTES (the daemon); otherwise only trim */
  fixMmapThreshold?: boolean
}

export async function tuneProcessMemory (options: TuneOptions = {}): Promise<ProcessMemory> {
  limitYoungGeneration()
  const mem = (await import('../backup/fsx.js')).nativeMemory
  const malloc = mem !== undefined && (options.fixMmapThreshold === true ? mem.mallocTune(MMAP_THRESHOLD_BYTES) : true)
  if (!malloc) {
    // loaded here: `daemon --help` (which sets the flag above) loads no logger
    const log = (await import('../util/log.js')).scopedLogger('memory')
    log('malloc tuning not in effect (%s): freed buffers may stay in RSS', mem === undefined ? 'the native addon is not loaded' : 'the C library is not glibc')
    return { malloc, stop: () => {} }
  }
  const timer = setInterval(() => { mem.mallocTrim() }, TRIM_EVERY_MS)
  timer.unref()
  return { malloc, stop: () => { clearInterval(timer) } }
}
