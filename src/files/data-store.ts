/**
 * Images the upstream sent inline (`data:image/png;base64,…`) are kept here under a
 * content-hash name and served like cached files, so the answer carries a short link
 * instead of megabytes that Open WebUI would store and resend with every turn.
 *
 * The folder is bounded: past `maxTotalBytes` the least recently used files (stored or
 * served longest ago) are removed, and their links answer 404. Removing only unlinks the
 * name, so a response already reading the file finishes it. The bytes on disk are
 * counted again at every start, so the bound holds across restarts.
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { base64Length, extensionFor, sniffImageType } from './file-types.js'

export type StoreRejection = 'too-large' | 'type-mismatch' | 'write-failed'

export interface DataStore {
  readonly dir: string
  /** Decodes and stores one image; its file name, or why it was not stored. */
  save: (mime: string, base64: string) => { ok: true, name: string } | { ok: false, reason: StoreRejection }
  /** Marks a file as used now when it is one of the store's (any other path is ignored). */
  touch: (realPath: string) => void
  /** Bytes of the stored files. */
  readonly bytes: number
}

export interface DataStoreOptions {
  dir: string
  /** Largest single image stored. */
  maxBytes: number
  /** Bound on all stored images together; defaults to `DEFAULT_STORE_MAX_BYTES`. */
  maxTotalBytes?: number
  /** Told the file name of each image removed to stay under the bound. */
  onEvict?: (name: string) => void
}

/** 512 MiB: thousands of generated pictures, a small part of any disk. */
export const DEFAULT_STORE_MAX_BYTES = 512 * 1024 * 1024

/** 128 bits of SHA-256: a name per content, no collision in any real store. */
const HASH_HEX = 32

// What `save` names a file; anything else in the folder is not the store's to count or remove.
const STORED_NAME = /^[0-9a-f]{32}\.[a-z]+$/

export function createDataStore (options: DataStoreOptions): DataStore {
  const dir = path.resolve(options.dir)
  const maxTotalBytes = options.maxTotalBytes ?? DEFAULT_STORE_MAX_BYTES
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  const realDir = fs.realpathSync(dir)
  // Sizes by name; a Map iterates in insertion order, so re-inserting on use keeps the
  // least recently used first.
  const sizes = new Map<string, number>()
  let total = 0

  function add (name: string, size: number): void {
    sizes.set(name, size)
    total += size
  }

  function use (name: string): void {
    const size = sizes.get(name)
    if (size === undefined) return
    sizes.delete(name)
    sizes.set(name, size)
  }

  /**
   * Removes the least recently used files until the bound holds. The file just stored
   * is the most recent and never larger than the bound, so it is never among them.
   */
  function evict (): void {
    for (const [name, size] of sizes) {
      if (total <= maxTotalBytes) return
      sizes.delete(name)
      total -= size
      // Already gone (removed by hand) is as good as removed.
      try { fs.unlinkSync(path.join(dir, name)) } catch {}
      options.onEvict?.(name)
    }
  }

  // Oldest first by modification time, the order they were stored in.
  const found = fs.readdirSync(dir).filter((name) => STORED_NAME.test(name)).flatMap((name) => {
    const stat = fs.lstatSync(path.join(dir, name))
    return stat.isFile() ? [{ name, size: stat.size, mtimeMs: stat.mtimeMs }] : []
  })
  found.sort((a, b) => a.mtimeMs - b.mtimeMs || a.name.localeCompare(b.name))
  for (const file of found) add(file.name, file.size)
  evict()

  return {
    dir,
    save (mime, base64) {
      const maxBytes = Math.min(options.maxBytes, maxTotalBytes)
      // Checked before decoding anything: longer text cannot decode to maxBytes or fewer.
      if (base64.length > base64Length(maxBytes)) return { ok: false, reason: 'too-large' }
      const bytes = Buffer.from(base64, 'base64')
      if (bytes.length > maxBytes) return { ok: false, reason: 'too-large' }
      if (sniffImageType(bytes) !== mime) return { ok: false, reason: 'type-mismatch' }
      const name = `${createHash('sha256').update(bytes).digest('hex').slice(0, HASH_HEX)}.${extensionFor(mime)}`
      const file = path.join(dir, name)
      if (sizes.has(name) && fs.existsSync(file)) {
        use(name)
        return { ok: true, name }
      }
      // Written under a temporary name and renamed, so a reader never sees half a file.
      const temporary = `${file}.${process.pid}.tmp`
      try {
        fs.writeFileSync(temporary, bytes, { mode: 0o644 })
        fs.renameSync(temporary, file)
      } catch {
        // The temporary file may not exist (the write itself failed); nothing else to undo.
        try { fs.unlinkSync(temporary) } catch {}
        return { ok: false, reason: 'write-failed' }
      }
      // Counted again if it was known but removed by hand in between.
      const previous = sizes.get(name)
      if (previous !== undefined) {
        sizes.delete(name)
        total -= previous
      }
      add(name, bytes.length)
      evict()
      return { ok: true, name }
    },
    touch (realPath) {
      if (path.dirname(realPath) === realDir) use(path.basename(realPath))
    },
    get bytes () {
      return total
    }
  }
}
