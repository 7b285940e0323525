/**
 * V8 flags a process sets while it runs (process-memory.ts). Node 20 puts V8's flags back as they were
 * at start-up while a worker thread starts: `--semi-space-growth-factor=1`, set by
 * `v8.setFlagsFromString` and even on the command line, no longer held once a worker had started,
 * and the young generation of the main thread grew to 16 MiB per semi-space (32 MiB of RSS) in a
 * backup that had set it (docs/benchmarks.md, "Where a publisher's memory goes"). So the flags are
 * set here, and whoever starts a worker calls {@link reapplyV8Flags} on the worker's `online` event.
 */
import v8 from 'node:v8'

const applied: string[] = []

/** Sets a V8 flag now and again after every worker started. */
export function setV8Flag (flag: string): void {
  v8.setFlagsFromString(flag)
  if (!applied.includes(flag)) applied.push(flag)
}

/** Sets again the flags of {@link setV8Flag}: call when a new worker is online. */
export function reapplyV8Flags (): void {
  for (const flag of applied) v8.setFlagsFromString(flag)
}
