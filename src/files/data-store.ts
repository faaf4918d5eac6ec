/**
 * Images the upstream sent inline (`data:image/png;base64,…`) are kept here under a
 * content-hash name and served like cached files, so the answer carries a short link
 * instead of megabytes that Open WebUI would store and resend with every turn.
 *
 * The folder is bounded: past `maxTotalBytes` the least recently used files (stored or
 * served longest ago) are removed, and their links answer 404 (see bounded-folder.ts).
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { createBoundedFolder } from './bounded-folder.js'
import { base64Length, extensionFor, sniffImageType } from './file-types.js'

type StoreRejection = 'too-large' | 'type-mismatch' | 'write-failed'

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
  const maxTotalBytes = options.maxTotalBytes ?? DEFAULT_STORE_MAX_BYTES
  const folder = createBoundedFolder({ dir: options.dir, maxTotalBytes, names: STORED_NAME, fileMode: 0o644, onEvict: options.onEvict })
  const realDir = fs.realpathSync(folder.dir)

  return {
    dir: folder.dir,
    save (mime, base64) {
      const maxBytes = Math.min(options.maxBytes, maxTotalBytes)
      // Checked before decoding anything: longer text cannot decode to maxBytes or fewer.
      if (base64.length > base64Length(maxBytes)) return { ok: false, reason: 'too-large' }
      const bytes = Buffer.from(base64, 'base64')
      if (bytes.length > maxBytes) return { ok: false, reason: 'too-large' }
      if (sniffImageType(bytes) !== mime) return { ok: false, reason: 'type-mismatch' }
      const name = `${createHash('sha256').update(bytes).digest('hex').slice(0, HASH_HEX)}.${extensionFor(mime)}`
      // The same content stored before: the same name, marked used. One removed by hand
      // is written again.
      if (folder.get(name) !== undefined) return { ok: true, name }
      return folder.put(name, bytes) === undefined ? { ok: false, reason: 'write-failed' } : { ok: true, name }
    },
    touch (realPath) {
      if (path.dirname(realPath) === realDir) folder.touch(path.basename(realPath))
    },
    get bytes () {
      return folder.bytes
    }
  }
}
