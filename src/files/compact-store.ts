/**
 * The folder of compact renderings (`<state-dir>/compact`), bounded by total bytes:
 * past the bound the least recently used renderings are removed and encoded again when
 * asked for. Like the store of inline images, removing only unlinks the name (a response
 * reading the file finishes it), and the folder is measured again at every start.
 */
import fs from 'node:fs'
import path from 'node:path'

export interface CompactStore {
  readonly dir: string
  /** The rendering's path if it is stored (and marks it used), else undefined. */
  get: (name: string) => string | undefined
  /** Stores a rendering; its path, or undefined when it could not be written or kept. */
  put: (name: string, bytes: Uint8Array) => string | undefined
  readonly bytes: number
}

// What the compactor names a rendering: a hex key and the format. Anything else in the
// folder is not the store's to count or remove.
const RENDERING_NAME = /^[0-9a-f]{32}\.(?:webp|avif)$/

export function createCompactStore (options: { dir: string, maxTotalBytes: number }): CompactStore {
  const dir = path.resolve(options.dir)
  const { maxTotalBytes } = options
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  // Sizes by name, least recently used first (a Map keeps insertion order).
  const sizes = new Map<string, number>()
  let total = 0

  function forget (name: string): void {
    const size = sizes.get(name)
    if (size === undefined) return
    sizes.delete(name)
    total -= size
  }

  function evict (): void {
    for (const [name] of sizes) {
      if (total <= maxTotalBytes) return
      forget(name)
      // Already gone (removed by hand) is as good as removed.
      try { fs.unlinkSync(path.join(dir, name)) } catch {}
    }
  }

  const found = fs.readdirSync(dir).filter((name) => RENDERING_NAME.test(name)).flatMap((name) => {
    const stat = fs.lstatSync(path.join(dir, name))
    return stat.isFile() ? [{ name, size: stat.size, atimeMs: stat.mtimeMs }] : []
  })
  found.sort((a, b) => a.atimeMs - b.atimeMs || a.name.localeCompare(b.name))
  for (const file of found) {
    sizes.set(file.name, file.size)
    total += file.size
  }
  evict()

  return {
    dir,
    get (name) {
      const size = sizes.get(name)
      if (size === undefined) return undefined
      const file = path.join(dir, name)
      // Removed by hand: encoded again.
      if (!fs.existsSync(file)) {
        forget(name)
        return undefined
      }
      sizes.delete(name)
      sizes.set(name, size)
      return file
    },
    put (name, bytes) {
      if (bytes.length > maxTotalBytes) return undefined
      const file = path.join(dir, name)
      // Written under a temporary name and renamed, so a reader never sees half a file.
      const temporary = `${file}.${process.pid}.tmp`
      try {
        fs.writeFileSync(temporary, bytes, { mode: 0o600 })
        fs.renameSync(temporary, file)
      } catch {
        try { fs.unlinkSync(temporary) } catch {}
        return undefined
      }
      forget(name)
      sizes.set(name, bytes.length)
      total += bytes.length
      evict()
      return file
    },
    get bytes () {
      return total
    }
  }
}
