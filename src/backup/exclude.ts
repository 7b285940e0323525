/**
 * --exclude patterns (glob). A pattern with a '/' is matched against the whole absolute path (and
 * anything below a matching directory is excluded with it); a pattern without '/' is matched against
 * each entry's own name, wherever it is: `--exclude '*.tmp' --exclude node_modules`.
 */
import picomatch from 'picomatch'

export class Excluder {
  private readonly byName: Array<(s: string) => boolean> = []
  private readonly byPath: Array<(s: string) => boolean> = []

  constructor (patterns: readonly string[]) {
    for (const p of patterns) {
      if (p.includes('/')) this.byPath.push(picomatch(p, { dot: true }))
      else this.byName.push(picomatch(p, { dot: true }))
    }
  }

  get empty (): boolean { return this.byName.length === 0 && this.byPath.length === 0 }

  excludes (path: Buffer): boolean {
    if (this.empty) return false
    const s = path.toString()
    if (this.byPath.some(m => m(s))) return true
    const name = s.slice(s.lastIndexOf('/') + 1)
    return this.byName.some(m => m(name))
  }
}
