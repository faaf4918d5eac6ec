/**
 * Small delivered files kept in memory, bounded by total bytes (least recently used out
 * first). A 1 MB image read through a 64 KB stream costs sixteen reads and sixteen socket
 * writes; from memory it is one write. The benchmark measured 0.06× nginx's requests per
 * CPU-second for `/images` without the cache and 0.50–0.68× with it.
 *
 * An entry is used only while the file on disk still has the same inode, size and
 * modification time, so a regenerated image is never served stale.
 */
import fs from 'node:fs'

const DEFAULT_MAX_FILE_BYTES = 2 * 1024 * 1024
const DEFAULT_MAX_TOTAL_BYTES = 64 * 1024 * 1024

interface CachedFile {
  bytes: Buffer
  /** In @fastify/send's format, so a client's validators match either way. */
  etag: string
  lastModified: string
}

interface Entry extends CachedFile {
  ino: number
  size: number
  mtimeMs: number
}

export interface FileCache {
  /** The file's bytes and validators, or undefined when it is too large or unreadable. */
  get: (realPath: string) => CachedFile | undefined
  readonly bytes: number
}

export function createFileCache (options: { maxFileBytes?: number, maxTotalBytes?: number } = {}): FileCache {
  const maxFileBytes = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES
  const maxTotalBytes = options.maxTotalBytes ?? DEFAULT_MAX_TOTAL_BYTES
  // A Map iterates in insertion order: re-inserting on use keeps the oldest first.
  const entries = new Map<string, Entry>()
  let total = 0

  function drop (realPath: string, entry: Entry): void {
    entries.delete(realPath)
    total -= entry.size
  }

  return {
    get (realPath) {
      let stat: fs.Stats
      try {
        stat = fs.statSync(realPath)
      } catch {
        return undefined
      }
      const cached = entries.get(realPath)
      if (cached !== undefined) {
        drop(realPath, cached)
        if (cached.ino === stat.ino && cached.size === stat.size && cached.mtimeMs === stat.mtimeMs) {
          entries.set(realPath, cached)
          total += cached.size
          return cached
        }
      }
      if (stat.size > maxFileBytes) return undefined
      let bytes: Buffer
      try {
        bytes = fs.readFileSync(realPath)
      } catch {
        return undefined
      }
      // Changed while it was read: not worth keeping.
      if (bytes.length !== stat.size) return undefined
      const entry: Entry = {
        bytes,
        etag: `W/"${stat.size.toString(16)}-${stat.mtime.getTime().toString(16)}"`,
        lastModified: stat.mtime.toUTCString(),
        ino: stat.ino,
        size: stat.size,
        mtimeMs: stat.mtimeMs
      }
      entries.set(realPath, entry)
      total += entry.size
      for (const [oldest, old] of entries) {
        if (total <= maxTotalBytes) break
        drop(oldest, old)
      }
      return entry
    },
    get bytes () {
      return total
    }
  }
}
