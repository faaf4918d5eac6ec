/**
 * The folder of compact renderings (`<state-dir>/compact`), bounded by total bytes:
 * past the bound the least recently used renderings are removed and encoded again when
 * asked for (see bounded-folder.ts).
 */
import { createBoundedFolder } from './bounded-folder.js'

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
  return createBoundedFolder({ dir: options.dir, maxTotalBytes: options.maxTotalBytes, names: RENDERING_NAME, fileMode: 0o600 })
}
