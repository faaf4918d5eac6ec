/**
 * Images the upstream sent inline (`data:image/png;base64,…`) are kept here under a
 * content-hash name and served like cached files, so the answer carries a short link
 * instead of megabytes that Open WebUI would store and resend with every turn.
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { extensionFor, sniffImageType } from './magic.js'

export type StoreRejection = 'too-large' | 'type-mismatch' | 'write-failed'

export interface DataStore {
  readonly dir: string
  /** Decodes and stores one image; its file name, or why it was not stored. */
  save: (mime: string, base64: string) => { ok: true, name: string } | { ok: false, reason: StoreRejection }
}

/** 128 bits of SHA-256: a name per content, no collision in any real store. */
const HASH_HEX = 32

export function createDataStore (options: { dir: string, maxBytes: number }): DataStore {
  const dir = path.resolve(options.dir)
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  return {
    dir,
    save (mime, base64) {
      // Four base64 characters carry three bytes; check before decoding anything.
      if (Math.floor(base64.length * 3 / 4) - 2 > options.maxBytes) return { ok: false, reason: 'too-large' }
      const bytes = Buffer.from(base64, 'base64')
      if (bytes.length > options.maxBytes) return { ok: false, reason: 'too-large' }
      if (sniffImageType(bytes) !== mime) return { ok: false, reason: 'type-mismatch' }
      const name = `${createHash('sha256').update(bytes).digest('hex').slice(0, HASH_HEX)}.${extensionFor(mime)}`
      const file = path.join(dir, name)
      if (fs.existsSync(file)) return { ok: true, name }
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
      return { ok: true, name }
    }
  }
}
