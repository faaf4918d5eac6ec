/**
 * Compact renderings of delivered images (WebP, or AVIF), encoded once with sharp and
 * kept in a bounded folder. sharp decodes and encodes in libuv's thread pool, off the
 * event loop; on a small machine even that competes with streaming for the cores, so at
 * most `concurrency` encodes run at a time, at most `queueLimit` wait, and a request
 * waits at most `waitMs` for its rendering. A busy compactor answers "send the original"
 * at once: a browser gets a larger picture rather than a slow one.
 *
 * A rendering that would not be smaller than the file, an animated GIF, and a file that
 * fails to decode are sent as they are; that decision is remembered for the file's
 * current version (inode, size, modification time), so it is made and logged once.
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import sharp from 'sharp'
import { createOldestOutMap } from '../oldest-out-map.js'
import { createBoundedFolder } from './bounded-folder.js'
import type { CompactFormat } from './negotiate.js'

/** One encode at a time: on 2 cores the other stays free for the streams. */
const DEFAULT_CONCURRENCY = 1
/** Requests for renderings not yet encoded that may wait; past it they get the original. */
const DEFAULT_QUEUE_LIMIT = 16
/** A browser waits this long for a first rendering; the encode goes on and is kept. */
const DEFAULT_WAIT_MS = 2000
/** Decisions to send the original, remembered per file version (about 1 MB of keys). */
const DEFAULT_MAX_DECISIONS = 10_000
/** libvips' own bound on decoded pixels (a decompression bomb is refused, not encoded). */
const MAX_INPUT_PIXELS = 268_402_689
// What the compactor names a rendering: a hex key and the format. Anything else in the
// folder is not the compactor's to count or remove.
const RENDERING_NAME = /^[0-9a-f]{32}\.(?:webp|avif)$/

export interface CompactorOptions {
  /**
   * Folder of the renderings (`<state-dir>/compact`): past `maxTotalBytes` the least
   * recently used are removed, and encoded again when asked for (see bounded-folder.ts).
   */
  dir: string
  /** Bound on the folder's renderings together. */
  maxTotalBytes: number
  /** Encoder quality, 1–100. */
  quality: number
  /** Wider pictures are scaled down to this width; 0 = never. */
  maxWidth: number
  concurrency?: number
  queueLimit?: number
  waitMs?: number
  /** How many "send the original" decisions are remembered; the oldest is forgotten first. */
  maxDecisions?: number
  /** Told once per file version that could not be decoded or encoded. */
  onFailure?: (failure: { realPath: string, err: unknown }) => void
}

/** A stored rendering, to be sent instead of the file. */
export interface Rendering {
  /** Real path of the rendering, inside `root`. */
  path: string
  root: string
}

/**
 * No rendering yet (the encoder is busy, it was not ready in time, or encoding was not
 * asked for): send the original for now, but not for long.
 */
export const LATER = 'later'

export interface Compactor {
  /**
   * The rendering of `realPath` in `format`; `LATER` when there is none yet; undefined
   * when the original is the answer for this version of the file (not smaller, not a
   * still picture, failed, gone). With `encode: false` only a rendering already stored
   * is returned (HEAD requests).
   */
  rendering: (realPath: string, format: CompactFormat, options?: { encode?: boolean }) => Promise<Rendering | typeof LATER | undefined>
  /** Encodes running or queued now. */
  readonly encodes: number
  /** Waits for the encodes running or queued. */
  close: () => Promise<void>
}

type Outcome = 'stored' | 'original'

/**
 * libavif's default effort (4) took 5–7 s for a 1024×1024 picture here; effort 2 took
 * 0.2–0.3 s, two to three times WebP's time, and kept most of the gain.
 */
const AVIF_EFFORT = 2

/**
 * One quality setting for both formats: sharp's defaults (WebP 80, AVIF 50) look alike,
 * and AVIF at WebP's number came out twice the WebP's size on the test picture.
 */
export function avifQuality (quality: number): number {
  return Math.max(1, Math.round(quality * 5 / 8))
}

export function createCompactor (options: CompactorOptions): Compactor {
  const store = createBoundedFolder({ dir: options.dir, maxTotalBytes: options.maxTotalBytes, names: RENDERING_NAME, fileMode: 0o600 })
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY
  const queueLimit = options.queueLimit ?? DEFAULT_QUEUE_LIMIT
  const waitMs = options.waitMs ?? DEFAULT_WAIT_MS
  const maxDecisions = options.maxDecisions ?? DEFAULT_MAX_DECISIONS
  const { quality, maxWidth, onFailure } = options
  // The decoded pixels of big pictures would otherwise stay in libvips' operation cache.
  sharp.cache(false)

  const originals = createOldestOutMap<string, true>(maxDecisions)
  const inflight = new Map<string, Promise<Outcome>>()
  const queue: Array<() => void> = []
  let running = 0

  function remember (key: string): Outcome {
    originals.set(key, true)
    return 'original'
  }

  /** Runs `job` when a slot is free; the slot is handed on when it ends. */
  function schedule (job: () => Promise<Outcome>): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      const start = (): void => {
        running++
        job().then(resolve).finally(() => {
          running--
          queue.shift()?.()
        })
      }
      if (running < concurrency) start()
      else queue.push(start)
    })
  }

  async function encode (realPath: string, format: CompactFormat, key: string, name: string, size: number): Promise<Outcome> {
    try {
      const bytes = await fs.promises.readFile(realPath)
      const image = sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS })
      const { pages = 1, width = 0 } = await image.metadata()
      // Only the first frame would be kept.
      if (pages > 1) return remember(key)
      let pipeline = image.autoOrient()
      if (maxWidth > 0 && width > maxWidth) pipeline = pipeline.resize({ width: maxWidth })
      const out = await (format === 'avif' ? pipeline.avif({ quality: avifQuality(quality), effort: AVIF_EFFORT }) : pipeline.webp({ quality })).toBuffer()
      if (out.length >= size) return remember(key)
      return store.put(name, out) === undefined ? remember(key) : 'stored'
    } catch (err) {
      onFailure?.({ realPath, err })
      return remember(key)
    }
  }

  return {
    async rendering (realPath, format, { encode: mayEncode = true } = {}) {
      let stat: fs.Stats
      try {
        stat = await fs.promises.stat(realPath)
      } catch {
        return undefined
      }
      // One key per file version and encoding setting: a regenerated file, or another
      // quality or width, gets a rendering of its own.
      const key = createHash('sha256')
        .update(JSON.stringify([realPath, stat.ino, stat.size, stat.mtimeMs, format, quality, maxWidth]))
        .digest('hex').slice(0, 32)
      if (originals.has(key)) return undefined
      const name = `${key}.${format}`
      const found = (): Rendering | undefined => {
        const path = store.get(name)
        return path === undefined ? undefined : { path, root: store.dir }
      }
      const stored = found()
      if (stored !== undefined) return stored
      if (!mayEncode) return LATER
      let pending = inflight.get(key)
      if (pending === undefined) {
        if (running + queue.length >= concurrency + queueLimit) return LATER
        pending = schedule(() => encode(realPath, format, key, name, stat.size))
        inflight.set(key, pending)
        const settled = pending
        settled.finally(() => inflight.delete(key))
      }
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<'late'>((resolve) => { timer = setTimeout(resolve, waitMs, 'late') })
      const outcome = await Promise.race([pending, late])
      clearTimeout(timer)
      if (outcome === 'original') return undefined
      // Evicted by other renderings between the encode's end and this line: no test can
      // time that, and the next request encodes it again.
      /* c8 ignore next */
      return found() ?? LATER
    },
    get encodes () { return running + queue.length },
    async close () {
      await Promise.allSettled([...inflight.values()])
    }
  }
}
